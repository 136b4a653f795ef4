import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import type { CredentialProvider, Env, Inspection, KnownKeys, StepContext } from '../../src/contracts.js';
import { RekeyError, quoteError, type ErrorCode } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { SecretValue, plainField, secretField, type Material } from '../../src/secret.js';
import {
  ADMIN_POOL_IDLE_MS, ADMIN_POOL_SIZE, APPLICATION_NAME, CONNECT_TIMEOUT_MS, DEFAULT_ADMIN_URL_ENV, MAX_IDENTIFIER_BYTES,
  MD5_KEY_ID_PREFIX, PASSWORD_BYTES, POSTGRES_ROLE_PASSWORD_KIND, SCRAM_ITERATIONS, SCRAM_KEY_ID_PREFIX, SCRAM_MECHANISM,
  SCRAM_SALT_BYTES, STATEMENT_TIMEOUT_MS, VERIFY_POLICY,
} from './constants.js';
import { POSTGRES_ROLE_PASSWORD_PARAMS_SCHEMA, type PostgresRolePasswordParams } from './schema.js';

const pbkdf2Async = promisify(pbkdf2);

// ---------------------------------------------------------------------------------------------
// SCRAM-SHA-256 verifiers (RFC 5802 section 3, RFC 7677) in PostgreSQL's storage format:
// SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
// ---------------------------------------------------------------------------------------------

const BASE64 = '[A-Za-z0-9+/]+={0,2}';
const SCRAM_VERIFIER_PATTERN = new RegExp(`^${SCRAM_MECHANISM}\\$(\\d+):(${BASE64})\\$(${BASE64}):(${BASE64})$`);
const MD5_VERIFIER_PATTERN = /^md5[0-9a-f]{32}$/;
const SCRAM_KEY_ID_PATTERN = new RegExp(`^${SCRAM_KEY_ID_PREFIX}([0-9a-f]{${SCRAM_SALT_BYTES * 2}})$`);
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * Iterations of the PBKDF2 stretch behind an `md5:` key id. The stored MD5 hash is cheap to test
 * a guessed password against, so its id is stretched to keep a weak human password from being
 * recovered from an audit record.
 */
const MD5_KEY_ID_ITERATIONS = 100_000;

/**
 * Builds the SCRAM-SHA-256 verifier that PostgreSQL stores for `password`, so that the server
 * receives the verifier and never the plaintext. Only printable ASCII is accepted, because
 * PostgreSQL applies SASLprep first and that is the identity on printable ASCII alone.
 */
export function buildScramVerifier(password: SecretValue, salt: Buffer, iterations = SCRAM_ITERATIONS): string {
  const plain = password.reveal();
  if (!PRINTABLE_ASCII.test(plain)) {
    throw new TypeError('a SCRAM verifier can only be built here for a printable ASCII password (SASLprep is not implemented)');
  }

  const saltedPassword = pbkdf2Sync(plain, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', saltedPassword).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', saltedPassword).update('Server Key').digest();
  saltedPassword.fill(0);
  clientKey.fill(0);

  return `${SCRAM_MECHANISM}$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Returns the salt of a SCRAM-SHA-256 verifier, or null if `verifier` is not one. */
export function scramSalt(verifier: string): Buffer | null {
  const match = SCRAM_VERIFIER_PATTERN.exec(verifier);
  return match?.[2] === undefined ? null : Buffer.from(match[2], 'base64');
}

/**
 * Derives the key id of a stored password. A SCRAM verifier's id is its salt in hex: random,
 * independent of the password and public anyway, since the server sends it to any client that
 * starts a login. Any other stored value (an MD5 hash from before the first rotation) gets a
 * stretched, truncated hash, so the id cannot be used to test guesses cheaply.
 */
export async function keyIdOfVerifier(verifier: string | null): Promise<string | null> {
  if (verifier === null) return null;

  const salt = scramSalt(verifier);
  if (salt !== null) return `${SCRAM_KEY_ID_PREFIX}${salt.toString('hex')}`;

  const stretched = await pbkdf2Async(verifier, 'rekey md5 key id', MD5_KEY_ID_ITERATIONS, 8, 'sha256');
  return `${MD5_KEY_ID_PREFIX}${stretched.toString('hex')}`;
}

/** Returns the salt that a key id made by `generate` carries, or null if `keyId` has another form. */
export function saltOfKeyId(keyId: string): Buffer | null {
  const match = SCRAM_KEY_ID_PATTERN.exec(keyId);
  return match?.[1] === undefined ? null : Buffer.from(match[1], 'hex');
}

/**
 * Builds the statement that sets a role's password to a stored verifier, or removes the password
 * when `verifier` is null. It rejects anything that is not a SCRAM-SHA-256 or MD5 verifier, so a
 * plaintext password can never end up in the statement (and in the server's logs).
 */
export function alterRolePasswordStatement(role: string, verifier: string | null): string {
  if (verifier === null) return `ALTER ROLE ${pg.escapeIdentifier(role)} PASSWORD NULL`;

  if (!SCRAM_VERIFIER_PATTERN.test(verifier) && !MD5_VERIFIER_PATTERN.test(verifier)) {
    throw new TypeError(`the password for role "${role}" is not a SCRAM-SHA-256 or MD5 verifier, and only a verifier may be sent to the server`);
  }
  return `ALTER ROLE ${pg.escapeIdentifier(role)} PASSWORD ${pg.escapeLiteral(verifier)}`;
}

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

interface AdminTarget {
  url: string;
  host: string;
  port: number;
  database: string;
  ssl: pg.ClientConfig['ssl'];
  /** The admin URL and its password, to scrub from quoted errors. */
  secrets: SecretValue[];
}

interface LoginTarget {
  host: string;
  port: number;
  database: string;
  ssl: pg.ClientConfig['ssl'];
  /** True when verify logs in to the server that ran ALTER ROLE, where the change is visible at once. */
  isAdminServer: boolean;
}

interface RoleRow {
  rolpassword: string | null;
  rolcanlogin: boolean;
  rolvaliduntil: Date | null;
}

/** The state that `discard` restores: the role's verifier before the first apply of a rotation. */
interface PreviousPassword {
  role: string;
  verifier: SecretValue | null;
}

/**
 * Maps the TLS settings of a connection URL (`sslmode`, or `ssl=true`) to the `ssl` option of
 * node-postgres, the way node-postgres reads PGSSLMODE.
 * NOTE: certificate parameters (sslrootcert, sslcert, sslkey) are not passed on to the verify login.
 */
function tlsOptionsOf(url: URL): pg.ClientConfig['ssl'] {
  const mode = url.searchParams.get('sslmode');
  if (mode === 'no-verify') return { rejectUnauthorized: false };
  if (mode !== null) return mode !== 'disable';

  const ssl = url.searchParams.get('ssl');
  return ssl === 'true' || ssl === '1';
}

function hostOf(url: URL): string {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return host === '' ? 'localhost' : host;
}

/** Classifies a node-postgres or socket error by whether a retry can help. */
function errorCodeOf(error: unknown): ErrorCode {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (code === '42501' || code === '28P01' || code === '28000') return 'PERMISSION_DENIED';
    if (code === '42704') return 'TARGET_NOT_FOUND';
    if (code === '57014') return 'TIMEOUT';
    // Connection exceptions, shutdowns, too many connections, serialization failures and deadlocks.
    if (code.startsWith('08') || code.startsWith('57P') || code === '53300' || code === '40001' || code === '40P01') {
      return 'UNAVAILABLE';
    }
    if (/^E[A-Z]+$/.test(code)) return code === 'ETIMEDOUT' ? 'TIMEOUT' : 'UNAVAILABLE';
  }
  if (error instanceof Error && /timeout/i.test(error.message)) return 'TIMEOUT';
  if (error instanceof Error && /Connection terminated/i.test(error.message)) return 'UNAVAILABLE';
  return 'INTERNAL';
}

function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Thrown by the verify login when the server requests no password, or one in a form other than SCRAM. */
class PasswordMethodError extends Error {
  override name = 'PasswordMethodError';
}

// ---------------------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------------------

/**
 * Rotates the password of one PostgreSQL role. rekey generates the password and stages it, then
 * `apply` sets the role's SCRAM-SHA-256 verifier, computed here, so the plaintext never reaches
 * the server. A role has one password, so this is a hard cutover: the old password stops
 * working at `apply`, and `discard` can only bring it back by restoring the old verifier.
 */
export class PostgresRolePasswordProvider implements CredentialProvider<PostgresRolePasswordParams> {
  readonly kind = POSTGRES_ROLE_PASSWORD_KIND;
  /** An estimate for one admin connection pool per server; REKEY_CALL_LIMITS overrides it. */
  readonly callLimits = { concurrency: 8, perSecond: 100 };
  readonly family = 'set' as const;
  readonly paramsSchema = POSTGRES_ROLE_PASSWORD_PARAMS_SCHEMA;
  readonly secretFields = ['password'] as const;
  readonly verifyPolicy = VERIFY_POLICY;

  readonly #env: Env;
  readonly #pools = new Map<string, pg.Pool>();
  /**
   * Verifiers to restore on discard, by rotation id.
   * NOTE: this lives in the memory of the process that ran `apply`. A discard in another process,
   * or after a restart, fails with PRECONDITION_FAILED until the engine can persist rollback state.
   */
  readonly #previousPasswords = new Map<string, PreviousPassword>();

  constructor(env: Env) {
    this.#env = env;
  }

  async inspect(params: PostgresRolePasswordParams, _known: KnownKeys, ctx: StepContext): Promise<Inspection> {
    ctx.signal.throwIfAborted();
    const role = roleOf(params);
    const row = await this.#readRole(params, role, ctx);
    if (row === null) throw new RekeyError('TARGET_NOT_FOUND', `PostgreSQL role "${role}" does not exist`);

    if (!row.rolcanlogin) {
      throw new RekeyError('PRECONDITION_FAILED', `PostgreSQL role "${role}" has NOLOGIN, so no password of it can be verified; grant LOGIN or remove the credential from the inventory`);
    }
    if (row.rolvaliduntil !== null && row.rolvaliduntil.getTime() <= Date.now()) {
      throw new RekeyError('PRECONDITION_FAILED', `PostgreSQL role "${role}" expired at ${row.rolvaliduntil.toISOString()} (VALID UNTIL), which rejects every password, including a new one; extend VALID UNTIL first`);
    }

    // A role has one password, so an earlier attempt cannot leave a second one behind.
    return { currentKeyId: await keyIdOfVerifier(row.rolpassword), orphanKeyIds: [] };
  }

  generate(params: PostgresRolePasswordParams, _ctx: StepContext): Material {
    const role = roleOf(params);
    // The salt travels in the key id, so that every apply of this material, in any process,
    // builds the same verifier and `inspect` derives the same key id from pg_authid.
    const salt = randomBytes(SCRAM_SALT_BYTES);
    return {
      keyId: `${SCRAM_KEY_ID_PREFIX}${salt.toString('hex')}`,
      fields: { username: role, password: SecretValue.generate(PASSWORD_BYTES) },
    };
  }

  async apply(params: PostgresRolePasswordParams, material: Material, ctx: StepContext): Promise<void> {
    ctx.signal.throwIfAborted();
    const role = roleOf(params);
    const password = secretField(material, 'password');
    const salt = saltOfKeyId(material.keyId);
    if (salt === null) {
      throw new RekeyError('INVALID_PARAMETERS', `key id ${material.keyId} was not generated by the ${this.kind} provider (expected ${SCRAM_KEY_ID_PREFIX} and ${SCRAM_SALT_BYTES * 2} hex digits)`);
    }
    if (plainField(material, 'username') !== role) {
      throw new RekeyError('INVALID_PARAMETERS', `material for key ${material.keyId} belongs to role "${plainField(material, 'username')}", not "${role}"`);
    }

    const row = await this.#readRole(params, role, ctx);
    if (row === null) throw new RekeyError('TARGET_NOT_FOUND', `PostgreSQL role "${role}" does not exist`);
    await this.#rememberPreviousPassword(role, row.rolpassword, material.keyId, ctx);

    const verifier = SecretValue.fromString(buildScramVerifier(password, salt));
    await this.#alterPassword(params, role, verifier, [password], ctx);
    ctx.logger.info({ role, keyId: material.keyId, rotationId: ctx.rotationId }, 'apply: role password set');
  }

  async verify(params: PostgresRolePasswordParams, material: Material, ctx: StepContext): Promise<void> {
    ctx.signal.throwIfAborted();
    const role = roleOf(params);
    const password = secretField(material, 'password');
    const target = this.#loginTarget(params);
    const where = `${target.host}:${target.port}/${target.database}`;

    try {
      await logIn(target, role, password);
    } catch (error) {
      throw verifyError(error, role, material.keyId, where, target, password);
    }
    ctx.logger.info({ role, keyId: material.keyId, host: target.host, port: target.port }, 'verify: role logged in with the new password');
  }

  async discard(params: PostgresRolePasswordParams, keyId: string, ctx: StepContext): Promise<void> {
    ctx.signal.throwIfAborted();
    const role = roleOf(params);
    const row = await this.#readRole(params, role, ctx);
    if (row === null) {
      ctx.logger.warn({ role, keyId }, 'discard: role no longer exists, nothing to restore');
      this.#previousPasswords.delete(ctx.rotationId);
      return;
    }

    if (await keyIdOfVerifier(row.rolpassword) !== keyId) {
      ctx.logger.info({ role, keyId }, 'discard: replacement is not the role password, nothing to restore');
      return;
    }

    const previous = this.#previousPasswords.get(ctx.rotationId);
    if (previous === undefined || previous.role !== role) {
      throw new RekeyError('PRECONDITION_FAILED', `cannot restore the previous password of PostgreSQL role "${role}": its verifier was kept in the memory of the process that applied rotation ${ctx.rotationId}, and that memory is gone. The role still uses key ${keyId}, whose password is staged as the pending version; promote it or set a password by hand`);
    }

    await this.#alterPassword(params, role, previous.verifier, [], ctx);
    this.#previousPasswords.delete(ctx.rotationId);
    ctx.logger.info({ role, keyId, rotationId: ctx.rotationId }, 'discard: previous role password restored');
  }

  /**
   * Deletes the old password. After `apply` nothing is left to delete, because the role has a
   * single password and the new verifier replaced the old one. If the old password is still the
   * role's (the operator asked to revoke first), the password is removed, so the role cannot log
   * in with a password until the replacement is applied.
   */
  async revoke(params: PostgresRolePasswordParams, oldKeyId: string, ctx: StepContext): Promise<void> {
    ctx.signal.throwIfAborted();
    const role = roleOf(params);
    this.#previousPasswords.delete(ctx.rotationId);
    const row = await this.#readRole(params, role, ctx);
    if (row === null) {
      ctx.logger.info({ role, keyId: oldKeyId }, 'revoke: role no longer exists');
      return;
    }

    if (await keyIdOfVerifier(row.rolpassword) !== oldKeyId) {
      ctx.logger.info({ role, keyId: oldKeyId }, 'revoke: old password already replaced');
      return;
    }

    await this.#alterPassword(params, role, null, [], ctx);
    ctx.logger.info({ role, keyId: oldKeyId }, 'revoke: role password removed');
  }

  async confirm(params: PostgresRolePasswordParams, oldKeyId: string, ctx: StepContext): Promise<boolean> {
    ctx.signal.throwIfAborted();
    const row = await this.#readRole(params, roleOf(params), ctx);
    return row === null || await keyIdOfVerifier(row.rolpassword) !== oldKeyId;
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#previousPasswords.clear();
    await Promise.all(pools.map((pool) => pool.end()));
  }

  /**
   * Records the role's verifier before the first apply of a rotation. A retried apply must not
   * record its own earlier result: if the role already has this material's verifier and nothing
   * was recorded, the previous one is unknown, and discard must fail instead of "restoring" the
   * replacement.
   */
  async #rememberPreviousPassword(role: string, verifier: string | null, keyId: string, ctx: StepContext): Promise<void> {
    if (this.#previousPasswords.has(ctx.rotationId)) return;

    if (await keyIdOfVerifier(verifier) === keyId) {
      ctx.logger.warn({ role, keyId, rotationId: ctx.rotationId }, 'apply: replacement already set by an earlier attempt, previous password unknown');
      return;
    }
    this.#previousPasswords.set(ctx.rotationId, { role, verifier: verifier === null ? null : SecretValue.fromString(verifier) });
  }

  async #readRole(params: PostgresRolePasswordParams, role: string, ctx: StepContext): Promise<RoleRow | null> {
    const admin = this.#adminTarget(params);
    try {
      const result = await this.#pool(params, admin, ctx.logger).query<RoleRow>(
        'SELECT rolpassword, rolcanlogin, rolvaliduntil FROM pg_catalog.pg_authid WHERE rolname = $1',
        [role],
      );
      return result.rows[0] ?? null;
    } catch (error) {
      const code = errorCodeOf(error);
      const hint = sqlStateOf(error) === '42501' ? '; reading pg_authid requires a superuser admin role' : '';
      throw new RekeyError(code, `failed to read PostgreSQL role "${role}" at ${admin.host}:${admin.port}: ${quoteError(error, admin.secrets)}${hint}`, { cause: error });
    }
  }

  async #alterPassword(
    params: PostgresRolePasswordParams, role: string, verifier: SecretValue | null, secrets: SecretValue[], ctx: StepContext,
  ): Promise<void> {
    const admin = this.#adminTarget(params);
    const scrub = verifier === null ? [...secrets, ...admin.secrets] : [verifier, ...secrets, ...admin.secrets];
    try {
      await this.#pool(params, admin, ctx.logger).query(alterRolePasswordStatement(role, verifier?.reveal() ?? null));
    } catch (error) {
      throw new RekeyError(errorCodeOf(error), `failed to set the password of PostgreSQL role "${role}": ${quoteError(error, scrub)}`, { cause: error });
    }
  }

  #adminTarget(params: PostgresRolePasswordParams): AdminTarget {
    const envName = params.adminUrlEnv ?? DEFAULT_ADMIN_URL_ENV;
    const value = this.#env[envName];
    if (value === undefined || value === '') {
      throw new RekeyError('PRECONDITION_FAILED', `environment variable ${envName} is not set. Set it to rekey's PostgreSQL admin URL (postgres://user@host:port/database)`);
    }

    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new RekeyError('PRECONDITION_FAILED', `environment variable ${envName} does not contain a valid postgres:// URL`);
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw new RekeyError('PRECONDITION_FAILED', `environment variable ${envName} contains a ${url.protocol} URL, but a postgres:// or postgresql:// URL is expected`);
    }

    const secrets = [SecretValue.fromString(value)];
    if (url.password !== '') secrets.push(SecretValue.fromString(decodeURIComponent(url.password)));
    return {
      url: value,
      host: hostOf(url),
      port: url.port === '' ? 5432 : Number(url.port),
      database: decodeURIComponent(url.pathname.slice(1)) || 'postgres',
      ssl: tlsOptionsOf(url),
      secrets,
    };
  }

  #loginTarget(params: PostgresRolePasswordParams): LoginTarget {
    const admin = this.#adminTarget(params);
    const host = params.host ?? admin.host;
    const port = params.port ?? admin.port;
    return {
      host,
      port,
      database: params.database ?? admin.database,
      ssl: admin.ssl,
      isAdminServer: host === admin.host && port === admin.port,
    };
  }

  #pool(params: PostgresRolePasswordParams, admin: AdminTarget, logger: Logger): pg.Pool {
    const envName = params.adminUrlEnv ?? DEFAULT_ADMIN_URL_ENV;
    let pool = this.#pools.get(envName);
    if (pool === undefined) {
      pool = new pg.Pool({
        connectionString: admin.url,
        max: ADMIN_POOL_SIZE,
        idleTimeoutMillis: ADMIN_POOL_IDLE_MS,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        statement_timeout: STATEMENT_TIMEOUT_MS,
        application_name: APPLICATION_NAME,
      });
      // An idle connection that the server closes must not crash the process. The next query
      // opens a new one and reports its own error.
      pool.on('error', (error) => {
        logger.warn({ envName, error: quoteError(error, admin.secrets) }, 'idle PostgreSQL admin connection failed');
      });
      this.#pools.set(envName, pool);
    }
    return pool;
  }
}

function roleOf(params: PostgresRolePasswordParams): string {
  const role = params.role;
  if (typeof role !== 'string' || role === '' || Buffer.byteLength(role, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new RekeyError('INVALID_PARAMETERS', `invalid role: a PostgreSQL role name has 1 to ${MAX_IDENTIFIER_BYTES} bytes`);
  }
  return role;
}

/**
 * Logs in as `role` over TCP and checks who the session runs as. The password is released to the
 * driver only when the server requests SCRAM, so a login that a trust rule lets through, or that
 * would send the password in clear text, fails instead of proving nothing.
 */
async function logIn(target: LoginTarget, role: string, password: SecretValue): Promise<void> {
  let scramRequested = false;
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    database: target.database,
    user: role,
    ssl: target.ssl,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: APPLICATION_NAME,
    password: () => {
      if (!scramRequested) throw new PasswordMethodError('the server requested the password in a form other than SCRAM-SHA-256');
      return password.reveal();
    },
  });
  // These listeners run before the client's own, which it attaches in connect().
  client.connection.on('authenticationSASL', () => { scramRequested = true; });
  client.on('error', () => { /* reported through connect() or query() */ });

  try {
    await client.connect();
    if (!scramRequested) {
      throw new PasswordMethodError('the server accepted the login without asking for a password (a trust rule in pg_hba.conf?), so it proves nothing about the password');
    }
    const result = await client.query<{ name: string }>('SELECT current_user AS name');
    if (result.rows[0]?.name !== role) {
      throw new PasswordMethodError(`the session runs as "${result.rows[0]?.name ?? ''}" instead of the role`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

function verifyError(error: unknown, role: string, keyId: string, where: string, target: LoginTarget, password: SecretValue): RekeyError {
  const quoted = quoteError(error, [password]);
  const subject = `the new password (key ${keyId}) of PostgreSQL role "${role}" at ${where}`;
  if (error instanceof PasswordMethodError) {
    return new RekeyError('VERIFY_FAILED', `could not verify ${subject}: ${error.message}`, { cause: error });
  }

  switch (sqlStateOf(error)) {
    case '28P01':
      // A replica, or a pooler in front of the server, may still accept only the old password.
      return target.isAdminServer
        ? new RekeyError('VERIFY_FAILED', `the server rejected ${subject}: ${quoted}`, { cause: error })
        : new RekeyError('NOT_READY', `${where} does not accept ${subject} yet: ${quoted}`, { cause: error });
    case '28000':
    case '3D000':
    case '42501':
      return new RekeyError('VERIFY_FAILED', `the server rejected the login with ${subject}: ${quoted}`, { cause: error });
    default:
      return new RekeyError(errorCodeOf(error), `failed to log in with ${subject}: ${quoted}`, { cause: error });
  }
}

/** Creates the `postgres-role-password` provider, which reads its admin URL from `env`. */
export function createPostgresRolePasswordProvider(env: Env): PostgresRolePasswordProvider {
  return new PostgresRolePasswordProvider(env);
}
