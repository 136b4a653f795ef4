import type { PollPolicy } from '../../src/contracts.js';

export const AZURE_APP_CLIENT_SECRET_KIND = 'azure-app-client-secret';

/** Material fields: the tenant and client ids are stored in plain text, the client secret as a secret. */
export const TENANT_ID_FIELD = 'tenantId';
export const CLIENT_ID_FIELD = 'clientId';
export const CLIENT_SECRET_FIELD = 'clientSecret';

/**
 * Prefix of the displayName rekey gives each secret it mints, followed by the rotation id. Graph
 * returns secretText only in the addPassword response, so when that response is lost (a timeout,
 * a 5xx) the display name is how rekey finds and removes the secret it cannot use.
 */
export const MINTED_DISPLAY_NAME_PREFIX = 'rekey:';

/**
 * Secrets an application that accepts personal Microsoft accounts may hold. Graph documents no
 * general limit, but such applications are reported to be capped at two (addPassword returns 400
 * TooManyAppPasswords). For other applications rekey enforces a limit only when `maxSecrets` is set.
 */
export const PERSONAL_ACCOUNT_SECRET_LIMIT = 2;
export const PERSONAL_ACCOUNT_AUDIENCES: ReadonlySet<string> = new Set(['AzureADandPersonalMicrosoftAccount', 'PersonalMicrosoftAccount']);

/** Graph error codes of addPassword for an application that already has as many secrets as it may. */
export const SECRET_LIMIT_ERRORS: ReadonlySet<string> = new Set(['TooManyAppPasswords', 'Directory_ResourceSizeExceeded']);

/**
 * Lifetime of a minted secret when the credential sets no `secretLifetimeDays`. Graph's own
 * default is two years; Microsoft recommends less than twelve months for client secrets.
 */
export const DEFAULT_SECRET_LIFETIME_DAYS = 180;

/**
 * AADSTS codes for a secret the token endpoint does not accept yet: 7000215 (invalid client
 * secret) is what Entra ID returns while a new secret propagates, reported as 4 to 18 seconds.
 */
export const SECRET_NOT_ACCEPTED_CODES: ReadonlySet<number> = new Set([7000215]);

/**
 * Polling bounds of verify. Entra ID gives no bound for the propagation of a new secret, so the
 * 120 s window is an estimate with room above the reported delays. REKEY_AZURE_VERIFY_WINDOW_MS
 * and REKEY_AZURE_VERIFY_INTERVAL_MS override the window and the interval.
 */
export const DEFAULT_VERIFY_POLICY: PollPolicy = { windowMs: 120_000, intervalMs: 2_000, consecutiveSuccesses: 2 };
