import type { PollPolicy } from '../../src/contracts.js';

export const AWS_IAM_ACCESS_KEY_KIND = 'aws-iam-access-key';

/**
 * Access keys an IAM user can have, active and inactive together. AWS does not raise it on request
 * (IAM User Guide, "IAM and AWS STS quotas": access keys assigned to an IAM user, 2).
 */
export const MAX_ACCESS_KEYS_PER_USER = 2;

/** Material fields: the access key id is stored in plain text, the secret access key as a secret. */
export const ACCESS_KEY_ID_FIELD = 'accessKeyId';
export const SECRET_ACCESS_KEY_FIELD = 'secretAccessKey';

/**
 * Polling bounds of verify. IAM gives no bound for the delay before a new key works, and STS
 * rejects the key meanwhile (one report on the AWS SDK for JavaScript tracker measured 15 s). The
 * 120 s window is an estimate with room for slower propagation. REKEY_AWS_VERIFY_WINDOW_MS and
 * REKEY_AWS_VERIFY_INTERVAL_MS override the window and the interval.
 */
export const DEFAULT_VERIFY_POLICY: PollPolicy = { windowMs: 120_000, intervalMs: 1_000, consecutiveSuccesses: 2 };

/** STS errors for a key that IAM has not propagated yet, and for a key that no longer exists. */
export const KEY_NOT_ACCEPTED_ERRORS: ReadonlySet<string> = new Set(['InvalidClientTokenId', 'InvalidAccessKeyId', 'SignatureDoesNotMatch']);
