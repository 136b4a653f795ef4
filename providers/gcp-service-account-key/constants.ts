import type { PollPolicy } from '../../src/contracts.js';

export const GCP_SERVICE_ACCOUNT_KEY_KIND = 'gcp-service-account-key';

/**
 * User-managed keys a service account can have, enabled and disabled together (IAM quotas,
 * "service account keys": 10 per service account). Google-managed (SYSTEM_MANAGED) keys do not count.
 */
export const MAX_KEYS_PER_SERVICE_ACCOUNT = 10;

/** The one secret field of the material, which is a complete key file: its PEM private key. */
export const PRIVATE_KEY_FIELD = 'private_key';
export const KEY_ID_FIELD = 'private_key_id';
export const CLIENT_EMAIL_FIELD = 'client_email';

/** The key file format and algorithm that rekey requests (IAM API, projects.serviceAccounts.keys.create). */
export const PRIVATE_KEY_TYPE = 'TYPE_GOOGLE_CREDENTIALS_FILE';
export const KEY_ALGORITHM = 'KEY_ALG_RSA_2048';

/** The organisation-policy constraints that forbid creating service-account keys (legacy and managed). */
export const KEY_CREATION_CONSTRAINTS = ['constraints/iam.disableServiceAccountKeyCreation', 'iam.managed.disableServiceAccountKeyCreation'];

/**
 * Polling bounds of verify. Google does not bound the delay before a new key is accepted, and
 * reports on Google's client-library trackers describe up to a minute and sometimes several. The 300 s
 * window is an estimate. The window counts from the key's creation time (`validAfterTime`), so a
 * worker that resumes verify after a crash does not start the window again.
 * REKEY_GCP_VERIFY_WINDOW_MS and REKEY_GCP_VERIFY_INTERVAL_MS override the window and the interval.
 */
export const DEFAULT_VERIFY_POLICY: PollPolicy = { windowMs: 300_000, intervalMs: 2_000, consecutiveSuccesses: 2 };
export const VERIFY_WINDOW_ENV = 'REKEY_GCP_VERIFY_WINDOW_MS';
export const VERIFY_INTERVAL_ENV = 'REKEY_GCP_VERIFY_INTERVAL_MS';
