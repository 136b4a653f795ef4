import type { PollPolicy } from '../../src/contracts.js';

export const GCP_ACCESS_TOKEN_KIND = 'gcp-access-token';

/** Material fields: the token is secret; its type, expiry and account are stored in plain text. */
export const ACCESS_TOKEN_FIELD = 'accessToken';
export const TOKEN_TYPE_FIELD = 'tokenType';
export const EXPIRE_TIME_FIELD = 'expireTime';
export const SERVICE_ACCOUNT_FIELD = 'serviceAccount';

export const DEFAULT_SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];

/**
 * Token lifetimes in seconds that generateAccessToken accepts: up to 1 h by default, and up to
 * 12 h where the organisation policy constraints/iam.allowServiceAccountCredentialLifetimeExtension
 * allows the account (IAM Credentials API reference).
 */
export const DEFAULT_LIFETIME_SECONDS = 3600;
export const MIN_LIFETIME_SECONDS = 60;
export const MAX_LIFETIME_SECONDS = 43_200;

/** Prefix of the key id, which is a keyed digest of the token: tokens have no id of their own. */
export const KEY_ID_PREFIX = 'token-';
export const KEY_ID_DIGEST_LENGTH = 16;

/** A token works the moment IAM Credentials returns it; the retries cover a busy tokeninfo endpoint. */
export const VERIFY_POLICY: PollPolicy = { windowMs: 30_000, intervalMs: 1_000, consecutiveSuccesses: 1 };
