import type { Inspection, KnownKeys } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { MINTED_DISPLAY_NAME_PREFIX, PERSONAL_ACCOUNT_AUDIENCES, PERSONAL_ACCOUNT_SECRET_LIMIT } from './constants.js';

/** A client secret as Graph lists it in an application's passwordCredentials (never with its value). */
export interface PasswordCredential {
  keyId: string;
  displayName: string | null;
  startDateTime: string | null;
  endDateTime: string | null;
}

/** The parts of a Graph application that rekey reads. */
export interface ApplicationView {
  id: string;
  appId: string;
  displayName: string;
  signInAudience: string | null;
  passwordCredentials: PasswordCredential[];
}

/** A secret limit and where it comes from, for messages. */
export interface SecretLimit {
  limit: number;
  source: string;
}

/** Returns the display name rekey gives the secret it mints in rotation `rotationId`. */
export function mintedDisplayName(rotationId: string): string {
  return `${MINTED_DISPLAY_NAME_PREFIX}${rotationId}`;
}

/** Describes an application for messages: its display name and application (client) id. */
export function describeApplication(application: Pick<ApplicationView, 'displayName' | 'appId'>): string {
  return `application "${application.displayName}" (appId ${application.appId})`;
}

/**
 * Returns the number of secrets the application may hold: `maxSecrets` from the inventory when
 * set, otherwise two for an application that accepts personal Microsoft accounts, otherwise null
 * (Graph documents no general limit).
 */
export function secretLimitOf(application: Pick<ApplicationView, 'signInAudience'>, maxSecrets: number | undefined): SecretLimit | null {
  if (maxSecrets !== undefined) return { limit: maxSecrets, source: 'maxSecrets in the inventory' };
  if (application.signInAudience !== null && PERSONAL_ACCOUNT_AUDIENCES.has(application.signInAudience)) {
    return { limit: PERSONAL_ACCOUNT_SECRET_LIMIT, source: `the limit for signInAudience ${application.signInAudience}` };
  }
  return null;
}

function startOf(password: PasswordCredential): number {
  const time = password.startDateTime === null ? Number.NaN : Date.parse(password.startDateTime);
  return Number.isNaN(time) ? 0 : time;
}

/**
 * Sorts an application's secrets into the current one, the orphans rekey may discard and the
 * others, and throws KEY_QUOTA when the secrets kept leave no room for a replacement.
 *
 * An orphan is a secret from `known.unpromotedKeyIds`: rekey minted it and never promoted it. A
 * secret rekey did not mint is never an orphan. The current secret is the recorded one while it
 * exists, otherwise the newest secret that is not an orphan. The remaining ones are other keys,
 * which incident mode revokes with the old one.
 */
export function classifyPasswords(application: ApplicationView, known: KnownKeys, limit: SecretLimit | null): Inspection {
  const keyIds = application.passwordCredentials.map((password) => password.keyId);
  const recorded = known.currentKeyId !== null && keyIds.includes(known.currentKeyId) ? known.currentKeyId : null;
  const orphanKeyIds = keyIds.filter((keyId) => keyId !== recorded && known.unpromotedKeyIds.includes(keyId));
  const remaining = application.passwordCredentials.filter((password) => !orphanKeyIds.includes(password.keyId));

  if (limit !== null && remaining.length >= limit.limit) {
    const listed = remaining.map((password) => (password.keyId === recorded ? `${password.keyId} (current)` : password.keyId)).join(', ');
    throw new RekeyError(
      'KEY_QUOTA',
      `${describeApplication(application)} already has ${remaining.length} client secrets, and ${limit.source} is ${limit.limit}: ${listed}. ` +
        'rekey deletes only secrets that it minted and never promoted, so remove an unused secret by hand, then retry',
    );
  }

  const newestFirst = [...remaining].sort((left, right) => startOf(right) - startOf(left));
  const current = recorded ?? newestFirst[0]?.keyId ?? null;
  const otherKeyIds = remaining.map((password) => password.keyId).filter((keyId) => keyId !== current);
  return { currentKeyId: current, orphanKeyIds, otherKeyIds };
}
