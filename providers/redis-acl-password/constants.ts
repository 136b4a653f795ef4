import type { PollPolicy } from '../../src/contracts.js';

export const REDIS_ACL_PASSWORD_KIND = 'redis-acl-password';

/** The environment variable that contains rekey's admin connection URL unless `adminUrlEnv` names another. */
export const DEFAULT_ADMIN_URL_ENV = 'REKEY_REDIS_ACL_URL';

/** Length of a generated password in random bytes, before base64url encoding (43 characters). */
export const PASSWORD_BYTES = 32;

/**
 * Key ids are `sha256:` and the first 16 hex digits of the password's SHA-256, the hash that
 * ACL GETUSER lists for each password.
 */
export const KEY_ID_PREFIX = 'acl:';
export const KEY_ID_HEX_DIGITS = 16;

export const CONNECT_TIMEOUT_MS = 10_000;
export const COMMAND_TIMEOUT_MS = 10_000;

/** An ACL change is in effect as soon as ACL SETUSER returns, so verify needs no long window. */
export const VERIFY_POLICY: PollPolicy = { windowMs: 10_000, intervalMs: 1_000, consecutiveSuccesses: 1 };

/** Name that rekey's admin connections show in CLIENT LIST. */
export const CONNECTION_NAME = 'rekey';

/** Start of the error text of ACL SAVE on a server without an aclfile (Redis 7.0). */
export const NO_ACL_FILE_ERROR = 'ERR This Redis instance is not configured to use an ACL file';

/** Part of the error text of `ACL SETUSER user !<hash>` when the user has no such password (Redis 7.0). */
export const PASSWORD_ABSENT_ERROR = 'The password you are trying to remove from the user does not exist';
