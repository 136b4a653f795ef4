import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { CredentialProvider, Env, Inspection, KnownKeys, StepContext } from '../../src/contracts.js';
import { RekeyError, quoteError, type ErrorCode } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { SecretValue, plainField, secretField, type Material } from '../../src/secret.js';
import {
  COMMAND_TIMEOUT_MS, CONNECTION_NAME, CONNECT_TIMEOUT_MS, DEFAULT_ADMIN_URL_ENV, KEY_ID_HEX_DIGITS, KEY_ID_PREFIX,
  NO_ACL_FILE_ERROR, PASSWORD_ABSENT_ERROR, PASSWORD_BYTES, REDIS_ACL_PASSWORD_KIND, VERIFY_POLICY,
} from './constants.js';
import { REDIS_ACL_PASSWORD_PARAMS_SCHEMA, type RedisAclPasswordParams } from './schema.js';

const KEY_ID_PATTERN = new RegExp(`^${KEY_ID_PREFIX}([0-9a-f]{${KEY_ID_HEX_DIGITS}})$`);

/** Returns the SHA-256 of a password in hex, the form in which Redis stores and lists it. */
export function passwordHash(password: SecretValue): string {
  return createHash('sha256').update(password.reveal(), 'utf8').digest('hex');
}

/**
 * Derives the key id of a stored password hash: a keyed digest of it, because the hash itself
 * (unsalted SHA-256, as Redis stores it) would let anyone holding the id test password guesses.
 */
export function keyIdOfHash(hash: string, ctx: Pick<StepContext, 'keyDigest'>): string {
  return `${KEY_ID_PREFIX}${ctx.keyDigest(hash).slice(0, KEY_ID_HEX_DIGITS)}`;
}

/**
 * Builds the arguments of `ACL SETUSER` that add a password next to the user's others. They carry
 * the password's hash (`#<sha256>`), so the admin connection never carries the plaintext.
 */
export function addPasswordArguments(user: string, password: SecretValue): string[] {
  return ['SETUSER', user, `#${passwordHash(password)}`];
}

/** Builds the arguments of `ACL SETUSER` that remove one password, by its full hash. */
export function removePasswordArguments(user: string, hash: string): string[] {
  return ['SETUSER', user, `!${hash}`];
}

/** The fields of an ACL GETUSER reply that rotation needs. */
interface AclUser {
  flags: string[];
  /** SHA-256 hashes of the user's passwords, in hex. */
  passwords: string[];
}

/** Parses the RESP2 reply of ACL GETUSER, a flat list of names and values; null means no such user. */
function parseAclUser(reply: unknown): AclUser | null {
  if (reply === null) return null;
  if (!Array.isArray(reply)) throw new TypeError('ACL GETUSER returned a reply that is not a list');

  const user: AclUser = { flags: [], passwords: [] };
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const value: unknown = reply[i + 1];
    if (!Array.isArray(value)) continue;
    if (reply[i] === 'flags') user.flags = value.map(String);
    if (reply[i] === 'passwords') user.passwords = value.map(String);
  }
  return user;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Classifies an ioredis or socket error by whether a retry can help. */
function errorCodeOf(error: unknown): ErrorCode {
  const message = messageOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (/^(NOPERM|WRONGPASS|NOAUTH)\b/.test(message)) return 'PERMISSION_DENIED';
  if (/^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN)\b/.test(message)) return 'UNAVAILABLE';
  if (code === 'ETIMEDOUT' || /timed out/i.test(message)) return 'TIMEOUT';
  if ((typeof code === 'string' && /^E[A-Z]+$/.test(code)) || (error instanceof Error && error.name === 'MaxRetriesPerRequestError')) {
    return 'UNAVAILABLE';
  }
  if (/Connection is closed|Stream isn't writeable/.test(message)) return 'UNAVAILABLE';
  return 'INTERNAL';
}

interface AdminTarget {
  envName: string;
  url: string;
  host: string;
  port: number;
  tls: boolean;
  /** The admin URL and its password, to scrub from quoted errors. */
  secrets: SecretValue[];
}

/**
 * Rotates one password of a Redis ACL user. A Redis user may have several passwords, so the old
 * and the new one both work from `apply` until `revoke`. Clients already authenticated stay
 * connected throughout, because rekey only adds and removes single passwords. It never runs
 * `resetpass` or `ACL LOAD`, which would lock out or disconnect them.
 * NOTE: ACL users are not replicated, so a replica's users need their own credential entry.
 */
export class RedisAclPasswordProvider implements CredentialProvider<RedisAclPasswordParams> {
  readonly kind = REDIS_ACL_PASSWORD_KIND;
  /** An estimate for one admin connection per server; REKEY_CALL_LIMITS overrides it. */
  readonly callLimits = { concurrency: 8, perSecond: 100 };
  readonly family = 'set' as const;
  readonly paramsSchema = REDIS_ACL_PASSWORD_PARAMS_SCHEMA;
  readonly secretFields = ['password'] as const;
  readonly verifyPolicy = VERIFY_POLICY;

  readonly #env: Env;
  readonly #clients = new Map<string, Redis>();

  constructor(env: Env) {
    this.#env = env;
  }

  async inspect(params: RedisAclPasswordParams, known: KnownKeys, ctx: StepContext): Promise<Inspection> {
    ctx.signal.throwIfAborted();
    const user = userOf(params);
    const acl = await this.#getUser(params, user, ctx);
    if (acl === null) throw new RekeyError('TARGET_NOT_FOUND', `Redis ACL user "${user}" does not exist`);

    if (acl.flags.includes('off')) {
      throw new RekeyError('PRECONDITION_FAILED', `Redis ACL user "${user}" is disabled (off), so no password of it can be verified; enable it with ACL SETUSER ${user} on, or remove the credential from the inventory`);
    }

    const keyIds = [...new Set(acl.passwords.map((hash) => keyIdOfHash(hash, ctx)))];
    const currentKeyId = currentKeyIdOf(user, keyIds, known);
    const unpromoted = new Set(known.unpromotedKeyIds);
    const orphanKeyIds = keyIds.filter((keyId) => unpromoted.has(keyId) && keyId !== currentKeyId);
    const otherKeyIds = keyIds.filter((keyId) => keyId !== currentKeyId && !orphanKeyIds.includes(keyId));
    return { currentKeyId, orphanKeyIds, otherKeyIds };
  }

  generate(params: RedisAclPasswordParams, ctx: StepContext): Material {
    const user = userOf(params);
    const password = SecretValue.generate(PASSWORD_BYTES);
    return { keyId: keyIdOfHash(passwordHash(password), ctx), fields: { username: user, password } };
  }

  async apply(params: RedisAclPasswordParams, material: Material, ctx: StepContext): Promise<void> {
    ctx.signal.throwIfAborted();
    const user = userOf(params);
    const password = secretField(material, 'password');
    if (keyIdOfHash(passwordHash(password), ctx) !== material.keyId) {
      throw new RekeyError('INVALID_PARAMETERS', `key id ${material.keyId} does not match the material's password`);
    }
    if (plainField(material, 'username') !== user) {
      throw new RekeyError('INVALID_PARAMETERS', `material for key ${material.keyId} belongs to user "${plainField(material, 'username')}", not "${user}"`);
    }

    // ACL SETUSER creates a missing user, so check first instead of creating an empty one.
    if (await this.#getUser(params, user, ctx) === null) {
      throw new RekeyError('TARGET_NOT_FOUND', `Redis ACL user "${user}" does not exist`);
    }
    await this.#setUser(params, user, addPasswordArguments(user, password), `add password ${material.keyId} to`, [password], ctx);
    await this.#saveAcl(params, ctx);
    ctx.logger.info({ user, keyId: material.keyId, rotationId: ctx.rotationId }, 'apply: password added to the ACL user');
  }

  async verify(params: RedisAclPasswordParams, material: Material, ctx: StepContext): Promise<void> {
    ctx.signal.throwIfAborted();
    const user = userOf(params);
    const password = secretField(material, 'password');
    const admin = this.#adminTarget(params);

    try {
      await authenticate(admin, user, password);
    } catch (error) {
      const quoted = quoteError(error, [password, ...admin.secrets]);
      const subject = `the new password (key ${material.keyId}) of Redis ACL user "${user}" at ${admin.host}:${admin.port}`;
      if (/^WRONGPASS\b/.test(messageOf(error))) {
        throw new RekeyError('VERIFY_FAILED', `Redis rejected ${subject}: ${quoted}`, { cause: error });
      }
      throw new RekeyError(errorCodeOf(error), `failed to authenticate with ${subject}: ${quoted}`, { cause: error });
    }
    ctx.logger.info({ user, keyId: material.keyId }, 'verify: ACL user authenticated with the new password');
  }

  async discard(params: RedisAclPasswordParams, keyId: string, ctx: StepContext): Promise<void> {
    await this.#removePassword(params, keyId, 'discard', ctx);
  }

  async revoke(params: RedisAclPasswordParams, oldKeyId: string, ctx: StepContext): Promise<void> {
    await this.#removePassword(params, oldKeyId, 'revoke', ctx);
  }

  async confirm(params: RedisAclPasswordParams, oldKeyId: string, ctx: StepContext): Promise<boolean> {
    ctx.signal.throwIfAborted();
    checkKeyId(oldKeyId);
    const acl = await this.#getUser(params, userOf(params), ctx);
    return acl === null || !acl.passwords.some((hash) => keyIdOfHash(hash, ctx) === oldKeyId);
  }

  async close(): Promise<void> {
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
  }

  /** Removes the password whose key id is `keyId`. "Already gone" is success. */
  async #removePassword(params: RedisAclPasswordParams, keyId: string, step: 'discard' | 'revoke', ctx: StepContext): Promise<void> {
    ctx.signal.throwIfAborted();
    const user = userOf(params);
    checkKeyId(keyId);
    const acl = await this.#getUser(params, user, ctx);
    if (acl === null) {
      ctx.logger.info({ user, keyId }, `${step}: ACL user no longer exists`);
      return;
    }

    const matches = [...new Set(acl.passwords.filter((hash) => keyIdOfHash(hash, ctx) === keyId))];
    if (matches.length === 0) {
      ctx.logger.info({ user, keyId }, `${step}: password already removed`);
      return;
    }
    const [hash] = matches;
    if (hash === undefined || matches.length > 1) {
      throw new RekeyError('PRECONDITION_FAILED', `Redis ACL user "${user}" has ${matches.length} passwords with key id ${keyId}, so the key is ambiguous; remove the stale one with ACL SETUSER ${user} !<hash>`);
    }

    await this.#setUser(params, user, removePasswordArguments(user, hash), `remove password ${keyId} from`, [], ctx);
    await this.#saveAcl(params, ctx);
    ctx.logger.info({ user, keyId }, `${step}: password removed from the ACL user`);
  }

  async #getUser(params: RedisAclPasswordParams, user: string, ctx: StepContext): Promise<AclUser | null> {
    const admin = this.#adminTarget(params);
    try {
      return parseAclUser(await this.#client(admin, ctx.logger).call('ACL', 'GETUSER', user));
    } catch (error) {
      throw new RekeyError(errorCodeOf(error), `failed to read Redis ACL user "${user}" at ${admin.host}:${admin.port}: ${quoteError(error, admin.secrets)}`, { cause: error });
    }
  }

  /** Runs ACL SETUSER. A password that is already absent counts as removed. */
  async #setUser(
    params: RedisAclPasswordParams, user: string, args: string[], action: string, secrets: SecretValue[], ctx: StepContext,
  ): Promise<void> {
    const admin = this.#adminTarget(params);
    try {
      await this.#client(admin, ctx.logger).call('ACL', ...args);
    } catch (error) {
      if (messageOf(error).includes(PASSWORD_ABSENT_ERROR)) return;
      throw new RekeyError(errorCodeOf(error), `failed to ${action} Redis ACL user "${user}": ${quoteError(error, [...secrets, ...admin.secrets])}`, { cause: error });
    }
  }

  /**
   * Writes the users to the server's aclfile, if it uses one, so that a restart keeps the change.
   * When the admin user may not run CONFIG GET, it tries ACL SAVE and accepts the "no ACL file" error.
   * NOTE: users defined in redis.conf rather than an aclfile are not persisted; a restart restores
   * their old passwords until someone runs CONFIG REWRITE.
   */
  async #saveAcl(params: RedisAclPasswordParams, ctx: StepContext): Promise<void> {
    const admin = this.#adminTarget(params);
    const client = this.#client(admin, ctx.logger);
    const usesAclFile = await aclFileInUse(client);
    if (usesAclFile === false) return;

    try {
      await client.call('ACL', 'SAVE');
    } catch (error) {
      if (usesAclFile === null && messageOf(error).startsWith(NO_ACL_FILE_ERROR)) return;
      throw new RekeyError('UNAVAILABLE', `the ACL change is in effect at ${admin.host}:${admin.port}, but ACL SAVE failed, so a restart would undo it: ${quoteError(error, admin.secrets)}`, { cause: error });
    }
  }

  #adminTarget(params: RedisAclPasswordParams): AdminTarget {
    const envName = params.adminUrlEnv ?? DEFAULT_ADMIN_URL_ENV;
    const value = this.#env[envName];
    if (value === undefined || value === '') {
      throw new RekeyError('PRECONDITION_FAILED', `environment variable ${envName} is not set. Set it to rekey's Redis admin URL (redis://user:password@host:port)`);
    }

    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new RekeyError('PRECONDITION_FAILED', `environment variable ${envName} does not contain a valid redis:// URL`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new RekeyError('PRECONDITION_FAILED', `environment variable ${envName} contains a ${url.protocol} URL, but a redis:// or rediss:// URL is expected`);
    }

    const secrets = [SecretValue.fromString(value)];
    if (url.password !== '') secrets.push(SecretValue.fromString(decodeURIComponent(url.password)));
    return {
      envName,
      url: value,
      host: url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost',
      port: url.port === '' ? 6379 : Number(url.port),
      tls: url.protocol === 'rediss:',
      secrets,
    };
  }

  #client(admin: AdminTarget, logger: Logger): Redis {
    let client = this.#clients.get(admin.envName);
    if (client === undefined || client.status === 'end') {
      client = new Redis(admin.url, {
        lazyConnect: true,
        protocol: 2,
        connectionName: CONNECTION_NAME,
        connectTimeout: CONNECT_TIMEOUT_MS,
        commandTimeout: COMMAND_TIMEOUT_MS,
        maxRetriesPerRequest: 1,
      });
      // ioredis emits an event for each failed reconnect. The command that needed the connection
      // fails with its own error, so the event is only logged at debug level.
      client.on('error', (error: unknown) => {
        logger.debug({ envName: admin.envName, error: quoteError(error, admin.secrets) }, 'Redis admin connection failed');
      });
      this.#clients.set(admin.envName, client);
    }
    return client;
  }
}

/**
 * Chooses the password the rotation replaces: the one rekey last promoted if the user still has
 * it, else the user's only password, else none (a `nopass` user or one without passwords). Among
 * several passwords, the ones rekey applied and never promoted are left out.
 */
function currentKeyIdOf(user: string, keyIds: string[], known: KnownKeys): string | null {
  if (known.currentKeyId !== null && keyIds.includes(known.currentKeyId)) return known.currentKeyId;
  if (keyIds.length <= 1) return keyIds[0] ?? null;

  const candidates = keyIds.filter((keyId) => !known.unpromotedKeyIds.includes(keyId));
  if (candidates.length === 1) return candidates[0] ?? null;
  throw new RekeyError('PRECONDITION_FAILED', `Redis ACL user "${user}" has ${keyIds.length} passwords (${keyIds.join(', ')}) and rekey's records do not say which one is current; remove the stale ones with ACL SETUSER ${user} !<hash> and rotate again`);
}

/**
 * Returns whether the server uses an aclfile, or null if the admin user may not run CONFIG GET.
 */
async function aclFileInUse(client: Redis): Promise<boolean | null> {
  try {
    const reply = await client.call('CONFIG', 'GET', 'aclfile');
    return Array.isArray(reply) && typeof reply[1] === 'string' && reply[1] !== '';
  } catch (error) {
    if (/^NOPERM\b/.test(messageOf(error))) return null;
    throw error;
  }
}

/**
 * Authenticates as `user` on a fresh connection, never the admin connection, so the result is
 * what a new client of the user gets.
 */
async function authenticate(admin: AdminTarget, user: string, password: SecretValue): Promise<void> {
  const options: RedisOptions = {
    host: admin.host,
    port: admin.port,
    lazyConnect: true,
    protocol: 2,
    // Nothing may run before AUTH: the default user can be disabled on this server.
    enableReadyCheck: false,
    disableClientInfo: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
  };
  if (admin.tls) options.tls = { servername: admin.host };

  const client = new Redis(options);
  client.on('error', () => { /* reported through connect() or call() */ });
  try {
    await client.connect();
    await client.call('AUTH', user, password.reveal());
  } finally {
    client.disconnect();
  }
}

function userOf(params: RedisAclPasswordParams): string {
  const user = params.user;
  if (typeof user !== 'string' || !/^\S+$/.test(user)) {
    throw new RekeyError('INVALID_PARAMETERS', 'invalid user: a Redis ACL user name is not empty and contains no spaces');
  }
  return user;
}

function checkKeyId(keyId: string): void {
  if (!KEY_ID_PATTERN.test(keyId)) {
    throw new RekeyError('INVALID_PARAMETERS', `invalid key id ${keyId}: a ${REDIS_ACL_PASSWORD_KIND} key id is ${KEY_ID_PREFIX} and ${KEY_ID_HEX_DIGITS} hex digits`);
  }
}

/** Creates the `redis-acl-password` provider, which reads its admin URL from `env`. */
export function createRedisAclPasswordProvider(env: Env): RedisAclPasswordProvider {
  return new RedisAclPasswordProvider(env);
}
