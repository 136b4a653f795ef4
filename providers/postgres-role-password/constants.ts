import type { PollPolicy } from '../../src/contracts.js';

export const POSTGRES_ROLE_PASSWORD_KIND = 'postgres-role-password';

/** The environment variable that contains rekey's admin connection URL unless `adminUrlEnv` names another. */
export const DEFAULT_ADMIN_URL_ENV = 'REKEY_POSTGRES_URL';

/** Length of a generated password in random bytes, before base64url encoding (43 characters). */
export const PASSWORD_BYTES = 32;

/**
 * SCRAM-SHA-256 parameters of the verifiers rekey builds: PostgreSQL's own defaults
 * (SCRAM_DEFAULT_ITERATIONS and SCRAM_DEFAULT_SALT_LEN in src/include/common/scram-common.h).
 * RFC 7677 requires at least 4096 iterations.
 */
export const SCRAM_ITERATIONS = 4096;
export const SCRAM_SALT_BYTES = 16;
export const SCRAM_MECHANISM = 'SCRAM-SHA-256';

/**
 * Prefix of key ids derived from a SCRAM verifier; the rest is the verifier's salt in hex. The
 * salt is public by design: the server sends it to any client that starts a SCRAM login.
 */
export const SCRAM_KEY_ID_PREFIX = 'scram:';

/** Prefix of key ids derived from a stored MD5 hash; the rest is 16 hex characters of SHA-256 over it. */
export const MD5_KEY_ID_PREFIX = 'md5:';

/** PostgreSQL truncates identifiers longer than NAMEDATALEN - 1 bytes (63 in default builds). */
export const MAX_IDENTIFIER_BYTES = 63;

export const CONNECT_TIMEOUT_MS = 10_000;
export const STATEMENT_TIMEOUT_MS = 15_000;

/** Admin connections per admin URL; rekey runs a handful of short statements per rotation. */
export const ADMIN_POOL_SIZE = 2;
export const ADMIN_POOL_IDLE_MS = 10_000;

/**
 * A password change is visible at once on the server that ran it. The window covers a verify
 * host that lags behind, such as a streaming replica or a pooler that caches logins.
 */
export const VERIFY_POLICY: PollPolicy = { windowMs: 60_000, intervalMs: 2_000, consecutiveSuccesses: 1 };

/** application_name of rekey's connections, so that pg_stat_activity shows who they are. */
export const APPLICATION_NAME = 'rekey';
