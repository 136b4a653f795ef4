import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Env } from '../../src/contracts.js';
import { quoteError, RekeyError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { SecretValue } from '../../src/secret.js';
import {
  DEFAULT_APPROLE_MOUNT, DEFAULT_K8S_JWT_FILE, DEFAULT_K8S_MOUNT, PATH_SEGMENT_PATTERN, RENEW_FRACTION, REQUEST_TIMEOUT_MS,
  VAULT_ADDR_ENV, VAULT_APPROLE_MOUNT_ENV, VAULT_CACERT_ENV, VAULT_K8S_JWT_FILE_ENV, VAULT_K8S_MOUNT_ENV, VAULT_K8S_ROLE_ENV,
  VAULT_NAMESPACE_ENV, VAULT_ROLE_ID_ENV, VAULT_SECRET_ID_ENV, VAULT_TOKEN_ENV,
} from './constants.js';
import { encodePath, responseError, VaultApiError, type VaultCall, type VaultHttpResponse } from './http.js';
import { parseAuth, parseTokenLookup, parseWith, type VaultAuth } from './responses.js';

export type VaultAuthMethod =
  | { kind: 'token'; token: SecretValue }
  | { kind: 'approle'; mount: string; roleId: string; secretId: SecretValue }
  | { kind: 'kubernetes'; mount: string; role: string; jwtFile: string };

/** rekey's Vault settings, read once from the environment. */
export interface VaultSettings {
  address: URL;
  namespace: string | undefined;
  /** Path of the CA certificate file from REKEY_VAULT_CACERT, and its contents. */
  caFile: string | undefined;
  ca: Buffer | undefined;
  auth: VaultAuthMethod;
  timeoutMs: number;
}

/** Context of each Vault call. A step context fits, and tests may pass less. */
export interface VaultCallContext {
  signal?: AbortSignal;
  logger?: Logger;
}

function invalidSetting(message: string): RekeyError {
  return new RekeyError('INVALID_PARAMETERS', message);
}

function setting(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

const MOUNT_EXPRESSION = new RegExp(`^${PATH_SEGMENT_PATTERN}(/${PATH_SEGMENT_PATTERN})*$`);

function mountSetting(env: Env, name: string, fallback: string): string {
  const mount = (setting(env, name) ?? fallback).replace(/^\/+|\/+$/g, '');
  if (!MOUNT_EXPRESSION.test(mount)) {
    throw invalidSetting(`${name}="${mount}" is not a valid auth mount path: expected segments of letters, digits, ".", "_" and "-", such as ${fallback}`);
  }
  return mount;
}

function readAddress(env: Env): URL {
  const value = setting(env, VAULT_ADDR_ENV);
  if (value === undefined) throw invalidSetting(`${VAULT_ADDR_ENV} is not set: set it to Vault's address, such as https://vault.example.com:8200`);
  if (!URL.canParse(value)) throw invalidSetting(`${VAULT_ADDR_ENV}="${value}" is not a valid URL: expected an address such as https://vault.example.com:8200`);

  const address = new URL(value);
  if (address.protocol !== 'https:' && address.protocol !== 'http:') {
    throw invalidSetting(`${VAULT_ADDR_ENV} uses ${address.protocol}, but Vault's address must be an https:// or http:// URL`);
  }
  if (address.username !== '' || address.password !== '') {
    throw invalidSetting(`${VAULT_ADDR_ENV} contains credentials: remove them from the URL and use ${VAULT_TOKEN_ENV}, AppRole or Kubernetes auth`);
  }
  if (address.search !== '' || address.hash !== '') throw invalidSetting(`${VAULT_ADDR_ENV} must not contain a query or a fragment`);
  return address;
}

function readCa(env: Env, address: URL): { caFile: string | undefined; ca: Buffer | undefined } {
  const caFile = setting(env, VAULT_CACERT_ENV);
  if (caFile === undefined) return { caFile, ca: undefined };
  if (address.protocol !== 'https:') {
    throw invalidSetting(`${VAULT_CACERT_ENV} is set, but ${VAULT_ADDR_ENV} uses http://, which has no TLS to verify: use Vault's https:// address`);
  }
  try {
    return { caFile, ca: readFileSync(caFile) };
  } catch (error) {
    throw invalidSetting(`${VAULT_CACERT_ENV}="${caFile}" cannot be read (${quoteError(error)}): set it to a PEM file of the CA certificates that sign Vault's certificate`);
  }
}

function readAuthMethod(env: Env): VaultAuthMethod {
  const token = setting(env, VAULT_TOKEN_ENV);
  const roleId = setting(env, VAULT_ROLE_ID_ENV);
  const secretId = setting(env, VAULT_SECRET_ID_ENV);
  const k8sRole = setting(env, VAULT_K8S_ROLE_ENV);

  const configured = [
    token === undefined ? null : VAULT_TOKEN_ENV,
    roleId === undefined && secretId === undefined ? null : `${VAULT_ROLE_ID_ENV} and ${VAULT_SECRET_ID_ENV}`,
    k8sRole === undefined ? null : VAULT_K8S_ROLE_ENV,
  ].filter((name): name is string => name !== null);
  if (configured.length === 0) {
    throw invalidSetting(`no Vault auth method is configured: set ${VAULT_TOKEN_ENV}, or ${VAULT_ROLE_ID_ENV} and ${VAULT_SECRET_ID_ENV} for AppRole, or ${VAULT_K8S_ROLE_ENV} for Kubernetes auth`);
  }
  if (configured.length > 1) throw invalidSetting(`several Vault auth methods are configured (${configured.join('; ')}): set only one`);

  if (token !== undefined) return { kind: 'token', token: SecretValue.fromString(token) };
  if (k8sRole !== undefined) {
    return { kind: 'kubernetes', mount: mountSetting(env, VAULT_K8S_MOUNT_ENV, DEFAULT_K8S_MOUNT), role: k8sRole, jwtFile: setting(env, VAULT_K8S_JWT_FILE_ENV) ?? DEFAULT_K8S_JWT_FILE };
  }
  if (roleId === undefined || secretId === undefined) {
    throw invalidSetting(`${roleId === undefined ? VAULT_ROLE_ID_ENV : VAULT_SECRET_ID_ENV} is not set: AppRole login needs both ${VAULT_ROLE_ID_ENV} and ${VAULT_SECRET_ID_ENV}`);
  }
  return { kind: 'approle', mount: mountSetting(env, VAULT_APPROLE_MOUNT_ENV, DEFAULT_APPROLE_MOUNT), roleId, secretId: SecretValue.fromString(secretId) };
}

/**
 * Reads rekey's Vault settings. REKEY_VAULT_ADDR is required, REKEY_VAULT_NAMESPACE and
 * REKEY_VAULT_CACERT are optional, and exactly one auth method must be set:
 *
 * - REKEY_VAULT_TOKEN, a static token;
 * - REKEY_VAULT_ROLE_ID with REKEY_VAULT_SECRET_ID, for AppRole at REKEY_VAULT_APPROLE_MOUNT (default approle);
 * - REKEY_VAULT_K8S_ROLE with the JWT file REKEY_VAULT_K8S_JWT_FILE, for Kubernetes auth at
 *   REKEY_VAULT_K8S_MOUNT (default kubernetes).
 *
 * Throws INVALID_PARAMETERS naming the variable at fault.
 */
export function readVaultSettings(env: Env, options: { timeoutMs?: number } = {}): VaultSettings {
  const address = readAddress(env);
  const namespace = setting(env, VAULT_NAMESPACE_ENV)?.replace(/^\/+|\/+$/g, '');
  return {
    address,
    namespace: namespace === '' ? undefined : namespace,
    ...readCa(env, address),
    auth: readAuthMethod(env),
    timeoutMs: options.timeoutMs ?? REQUEST_TIMEOUT_MS,
  };
}

/** Sends one request with `token`, or without a token when it is undefined. */
export type VaultSender = (call: VaultCall, token: SecretValue | undefined, signal: AbortSignal | undefined) => Promise<VaultHttpResponse>;

interface Lease {
  token: SecretValue;
  accessor: string;
  /** The TTL granted at login or creation, in milliseconds, or 0 for a token that never expires. */
  ttlMs: number;
  expiresAt: number | null;
  renewable: boolean;
  /** True once a renewal came back shorter than the TTL, because Vault capped it at the token's max TTL. */
  capped: boolean;
  /** After a failed renewal, the time before which no other renewal is tried. */
  renewRetryAt: number;
}

type TokenAction = 'use' | 'establish' | 'renew' | 'login' | 'expired';

/** Maximum delay of setTimeout: 2^31 - 1 ms, about 24.8 days. A longer delay fires at once. */
const MAX_TIMER_DELAY_MS = 2_147_483_647;

/** Pause before a failed renewal is tried again, while the token still works. */
const RENEW_RETRY_PAUSE_MS = 5_000;

/** Margin after the renewal point, so that the timer's call finds the token due for renewal. */
const RENEWAL_TIMER_LATENESS_MS = 50;

let defaultLogger: Logger | undefined;

export function loggerOf(ctx: VaultCallContext): Logger {
  if (ctx.logger !== undefined) return ctx.logger;
  defaultLogger ??= silentLogger();
  return defaultLogger;
}

const RELOGIN_HINT = `or configure AppRole (${VAULT_ROLE_ID_ENV} and ${VAULT_SECRET_ID_ENV}) or Kubernetes auth (${VAULT_K8S_ROLE_ENV}), with which rekey logs in again by itself`;

/**
 * Keeps the client's Vault token usable. Once less than a third of the token's TTL is left, the
 * next request, or a timer between requests, renews it with renew-self. A renewal that Vault caps
 * at the max TTL cannot extend the token further, so AppRole and Kubernetes auth then log in
 * again. A static token (REKEY_VAULT_TOKEN) is used until it expires, and then every call fails
 * with an error that explains how to replace it. Concurrent calls share one login or renewal.
 */
export class VaultTokenManager {
  readonly #method: VaultAuthMethod;
  readonly #send: VaultSender;
  readonly #logger: Logger | undefined;
  #lease: Lease | null = null;
  #pending: Promise<Lease> | null = null;
  #renewalTimer: NodeJS.Timeout | null = null;

  /** `logger` receives the lines of renewals that run between calls. */
  constructor(method: VaultAuthMethod, send: VaultSender, options: { logger?: Logger } = {}) {
    this.#method = method;
    this.#send = send;
    this.#logger = options.logger;
  }

  get methodName(): VaultAuthMethod['kind'] {
    return this.#method.kind;
  }

  /** Returns a token to send, logging in or renewing first when the current one needs it. */
  async token(ctx: VaultCallContext): Promise<SecretValue> {
    for (;;) {
      if (this.#pending !== null) {
        await this.#pending;
        continue;
      }
      const lease = this.#lease;
      const action = this.#actionFor(lease, Date.now());
      if (action === 'use' && lease !== null) return lease.token;
      if (action === 'expired' && lease !== null) throw expiredTokenError(lease);

      this.#pending = this.#perform(action, lease, ctx).finally(() => {
        this.#pending = null;
      });
      return (await this.#pending).token;
    }
  }

  /**
   * Decides, after a request sent with `used` got 403, whether sending it again with a new token
   * can help. A token that lookup-self still accepts was simply denied by its policy, so this
   * returns false. A dead token is forgotten: AppRole and Kubernetes auth log in again on the next
   * call (true), and a static token fails with an error that explains how to replace it.
   */
  async retryAfterDenied(used: SecretValue, ctx: VaultCallContext): Promise<boolean> {
    if (this.#lease === null || this.#lease.token !== used) return true;
    const lookup: VaultCall = { method: 'GET', path: 'auth/token/lookup-self' };
    const response = await this.#send(lookup, used, ctx.signal);
    if (response.status !== 403) return false;

    if (this.#lease?.token === used) this.#lease = null;
    loggerOf(ctx).warn({ authMethod: this.#method.kind }, 'Vault rejected the token because it has expired or was revoked');
    if (this.#method.kind === 'token') throw staticTokenRejectedError();
    return true;
  }

  /** Stops the renewal timer. The current token stays valid in Vault until it expires. */
  close(): void {
    if (this.#renewalTimer !== null) clearTimeout(this.#renewalTimer);
    this.#renewalTimer = null;
  }

  /**
   * Schedules a renewal for when a third of the token's TTL is left, so that a process that makes
   * no Vault call for a while keeps its token. The timer does not keep the process alive.
   */
  #scheduleRenewal(lease: Lease): void {
    this.close();
    if (lease.expiresAt === null) return;
    const due = Math.max(lease.expiresAt - lease.ttlMs * RENEW_FRACTION, lease.renewRetryAt) - Date.now();
    const delay = Math.min(Math.max(due + RENEWAL_TIMER_LATENESS_MS, 0), MAX_TIMER_DELAY_MS);
    this.#renewalTimer = setTimeout(() => {
      this.#renewalTimer = null;
      const ctx = this.#logger === undefined ? {} : { logger: this.#logger };
      this.token(ctx).then(
        () => {
          if (this.#renewalTimer === null && this.#lease !== null) this.#scheduleRenewal(this.#lease);
        },
        (error: unknown) => loggerOf(ctx).warn({ authMethod: this.#method.kind, error: quoteError(error) }, 'scheduled Vault token renewal failed, and the next call retries it'),
      );
    }, delay);
    this.#renewalTimer.unref();
  }

  #canLogIn(): boolean {
    return this.#method.kind !== 'token';
  }

  #actionFor(lease: Lease | null, now: number): TokenAction {
    if (lease === null) return 'establish';
    if (lease.expiresAt === null) return 'use';

    const remaining = lease.expiresAt - now;
    if (remaining <= 0) return this.#canLogIn() ? 'login' : 'expired';
    if (remaining >= lease.ttlMs * RENEW_FRACTION || now < lease.renewRetryAt) return 'use';
    if (lease.renewable && !lease.capped) return 'renew';
    // A static token that cannot be renewed any further still works until it expires.
    return this.#canLogIn() ? 'login' : 'use';
  }

  async #perform(action: TokenAction, lease: Lease | null, ctx: VaultCallContext): Promise<Lease> {
    let next: Lease;
    if (action === 'renew' && lease !== null) next = await this.#renew(lease, ctx);
    else if (action === 'establish' && this.#method.kind === 'token') next = await this.#lookUpStaticToken(this.#method.token, ctx);
    else next = await this.#logIn(ctx);
    this.#lease = next;
    this.#scheduleRenewal(next);
    return next;
  }

  async #lookUpStaticToken(token: SecretValue, ctx: VaultCallContext): Promise<Lease> {
    const call: VaultCall = { method: 'GET', path: 'auth/token/lookup-self' };
    const response = await this.#send(call, token, ctx.signal);
    if (response.status === 403) throw staticTokenRejectedError();
    if (response.status !== 200) throw responseError(call, response, [token]);

    const info = parseWith(call, response.body, parseTokenLookup);
    const neverExpires = info.ttlSeconds === 0 && info.expireTime === null;
    const ttlSeconds = info.creationTtlSeconds > 0 ? info.creationTtlSeconds : info.ttlSeconds;
    loggerOf(ctx).info({ authMethod: 'token', accessor: info.accessor, ttlSeconds: info.ttlSeconds, renewable: info.renewable }, 'Vault token looked up');
    return {
      token,
      accessor: info.accessor,
      ttlMs: neverExpires ? 0 : ttlSeconds * 1000,
      expiresAt: neverExpires ? null : Date.now() + info.ttlSeconds * 1000,
      renewable: info.renewable,
      capped: false,
      renewRetryAt: 0,
    };
  }

  async #renew(lease: Lease, ctx: VaultCallContext): Promise<Lease> {
    const call: VaultCall = { method: 'POST', path: 'auth/token/renew-self', body: {} };
    const logger = loggerOf(ctx);
    let response: VaultHttpResponse;
    try {
      response = await this.#send(call, lease.token, ctx.signal);
    } catch (error) {
      return this.#keepAfterFailedRenewal(lease, error, logger);
    }

    if (response.status === 403) {
      if (!this.#canLogIn()) throw staticTokenRejectedError();
      return this.#logIn(ctx);
    }
    if (response.status === 400) {
      logger.warn({ accessor: lease.accessor }, 'Vault did not renew the token because it is not renewable');
      const unrenewable = { ...lease, renewable: false };
      return this.#canLogIn() ? this.#logIn(ctx) : unrenewable;
    }
    if (response.status !== 200) return this.#keepAfterFailedRenewal(lease, responseError(call, response, [lease.token]), logger);

    const auth = parseWith(call, response.body, parseAuth);
    const expiresAt = Date.now() + auth.leaseSeconds * 1000;
    // Vault grants a renewal the token's full TTL in whole seconds unless the max TTL cuts it short.
    const capped = auth.leaseSeconds * 1000 < lease.ttlMs;
    logger.info({ accessor: lease.accessor, ttlSeconds: auth.leaseSeconds, capped }, 'Vault token renewed');

    const renewed: Lease = { ...lease, expiresAt, renewable: auth.renewable, capped, renewRetryAt: 0 };
    if (capped && this.#canLogIn() && expiresAt - Date.now() < lease.ttlMs * RENEW_FRACTION) return this.#logIn(ctx);
    return renewed;
  }

  /** Keeps a token whose renewal failed for a reason a retry may fix, as long as it has time left. */
  #keepAfterFailedRenewal(lease: Lease, error: unknown, logger: Logger): Lease {
    if (lease.expiresAt !== null && lease.expiresAt > Date.now()) {
      logger.warn({ accessor: lease.accessor, error: quoteError(error, [lease.token]) }, 'Vault token renewal failed, so the token stays in use until the renewal is retried');
      return { ...lease, renewRetryAt: Date.now() + RENEW_RETRY_PAUSE_MS };
    }
    throw error;
  }

  async #logIn(ctx: VaultCallContext): Promise<Lease> {
    const method = this.#method;
    if (method.kind === 'token') throw staticTokenRejectedError();

    let auth: VaultAuth;
    if (method.kind === 'approle') {
      auth = await logInWithAppRole(this.#send, method.mount, method.roleId, method.secretId, ctx).catch((error: unknown) => {
        throw ownLoginError(error, `AppRole login at auth/${method.mount}/login (${VAULT_ROLE_ID_ENV}, ${VAULT_SECRET_ID_ENV})`,
          `check ${VAULT_ROLE_ID_ENV} and set ${VAULT_SECRET_ID_ENV} to a valid secret ID of that role`);
      });
    } else {
      const jwt = await readJwt(method.jwtFile);
      const call: VaultCall = { method: 'POST', path: `auth/${encodePath(method.mount)}/login`, body: { role: method.role, jwt } };
      auth = await loginCall(this.#send, call, [jwt], ctx).catch((error: unknown) => {
        throw ownLoginError(error, `Kubernetes login as role "${method.role}" at auth/${method.mount}/login`,
          `check that the role binds this pod's service account and that ${VAULT_K8S_JWT_FILE_ENV} names its token`);
      });
    }

    loggerOf(ctx).info({ authMethod: method.kind, accessor: auth.accessor, ttlSeconds: auth.leaseSeconds }, 'logged in to Vault');
    return {
      token: auth.token,
      accessor: auth.accessor,
      ttlMs: auth.leaseSeconds * 1000,
      expiresAt: auth.leaseSeconds === 0 ? null : Date.now() + auth.leaseSeconds * 1000,
      renewable: auth.renewable,
      capped: false,
      renewRetryAt: 0,
    };
  }
}

/** Sends a login request, which carries no token, and returns the token that Vault issued. */
async function loginCall(send: VaultSender, call: VaultCall, secrets: SecretValue[], ctx: VaultCallContext): Promise<VaultAuth> {
  const response = await send(call, undefined, ctx.signal);
  if (response.status !== 200) throw responseError(call, response, secrets);
  return parseWith(call, response.body, parseAuth);
}

/**
 * Logs in with an AppRole role ID and secret ID, without any other token. Throws a VaultApiError
 * whose `httpStatus` is 400 when Vault rejects the pair.
 */
export function logInWithAppRole(send: VaultSender, mount: string, roleId: string, secretId: SecretValue, ctx: VaultCallContext): Promise<VaultAuth> {
  const call: VaultCall = { method: 'POST', path: `auth/${encodePath(mount)}/login`, body: { role_id: roleId, secret_id: secretId } };
  return loginCall(send, call, [secretId], ctx);
}

async function readJwt(file: string): Promise<SecretValue> {
  try {
    return SecretValue.fromString((await readFile(file, 'utf8')).trim());
  } catch (error) {
    throw new RekeyError('PRECONDITION_FAILED', `the Kubernetes service account token ${file} cannot be read (${quoteError(error)}): set ${VAULT_K8S_JWT_FILE_ENV} to the file of the pod's projected token`);
  }
}

/** Turns the failure of rekey's own login into a PERMISSION_DENIED when Vault rejected the credentials. */
function ownLoginError(error: unknown, login: string, fix: string): unknown {
  if (!(error instanceof VaultApiError) || (error.httpStatus !== 400 && error.httpStatus !== 403)) return error;
  const reason = error.vaultErrors.length > 0 ? error.vaultErrors.join('; ') : `HTTP ${error.httpStatus}`;
  return new RekeyError('PERMISSION_DENIED', `Vault rejected rekey's ${login} (${reason}): ${fix}`);
}

function staticTokenRejectedError(): RekeyError {
  return new RekeyError(
    'PERMISSION_DENIED',
    `Vault rejected the token in ${VAULT_TOKEN_ENV} (HTTP 403 permission denied): it has expired, was revoked or is wrong, ` +
      `or its policies do not allow auth/token/lookup-self. Set ${VAULT_TOKEN_ENV} to a valid token, ${RELOGIN_HINT}`,
  );
}

function expiredTokenError(lease: Lease): RekeyError {
  const when = lease.expiresAt === null ? 'already' : `at ${new Date(lease.expiresAt).toISOString()}`;
  let reason = 'no renewal reached Vault in the last third of its TTL';
  if (lease.capped) reason = 'it reached its max TTL';
  if (!lease.renewable) reason = 'it is not renewable';
  return new RekeyError(
    'PERMISSION_DENIED',
    `the Vault token in ${VAULT_TOKEN_ENV} (accessor ${lease.accessor}) expired ${when} because ${reason}, and rekey cannot log in again with a static token. ` +
      `Set ${VAULT_TOKEN_ENV} to a new token, ${RELOGIN_HINT}`,
  );
}
