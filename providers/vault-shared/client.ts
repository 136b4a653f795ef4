import { inspect } from 'node:util';
import type { Logger } from 'pino';
import type { Env } from '../../src/contracts.js';
import type { SecretValue } from '../../src/secret.js';
import { loggerOf, logInWithAppRole, readVaultSettings, VaultTokenManager, type VaultCallContext, type VaultSettings } from './auth.js';
import { ACCESSOR_NOT_FOUND_ERROR } from './constants.js';
import {
  encodePath, responseError, secretsOf, vaultErrorsOf, VaultTransport, type RequestBody, type VaultCall, type VaultHttpResponse,
} from './http.js';
import {
  parseCapabilities, parseCreatedSecretId, parseHealth, parseKeys, parseKvMetadata, parseKvVersion, parseKvWrite, parseRoleId,
  parseSecretIdInfo, parseTokenLookup, parseWith, type CreatedSecretId, type KvMetadata, type KvVersion, type KvVersionMetadata,
  type SecretIdInfo, type VaultAuth, type VaultHealth, type VaultTokenInfo,
} from './responses.js';

export interface VaultClientOptions {
  /** Time one request may take, in milliseconds. */
  timeoutMs?: number;
  /** Receives the lines of token renewals that run between calls. */
  logger?: Logger;
}

/** Creates a Vault client from rekey's environment (see readVaultSettings). */
export function createVaultClient(env: Env, options: VaultClientOptions = {}): VaultClient {
  return new VaultClient(readVaultSettings(env, { timeoutMs: options.timeoutMs }), options);
}

function kvPath(mount: string, operation: 'data' | 'metadata', path: string): string {
  return `${encodePath(mount)}/${operation}/${encodePath(path)}`;
}

function appRolePath(mount: string, role: string, operation: string): string {
  return `auth/${encodePath(mount)}/role/${encodeURIComponent(role)}/${operation}`;
}

/**
 * A typed client of the Vault HTTP API, for the calls rekey makes: KV version 2, AppRole secret
 * IDs, token lookup and sys/health. It authenticates as VaultTokenManager describes, sends
 * X-Vault-Namespace when REKEY_VAULT_NAMESPACE is set, verifies TLS against REKEY_VAULT_CACERT or
 * the system's CAs, and throws RekeyErrors (VaultApiError) whose code marks whether a retry can help.
 *
 * Tokens, secret IDs and KV values travel as SecretValue. They are scrubbed from quoted Vault
 * errors, and the client's JSON and inspect forms show only its address, namespace and auth method.
 */
export class VaultClient {
  readonly #settings: VaultSettings;
  readonly #transport: VaultTransport;
  readonly #tokens: VaultTokenManager;

  constructor(settings: VaultSettings, options: VaultClientOptions = {}) {
    this.#settings = settings;
    this.#transport = new VaultTransport({ address: settings.address, namespace: settings.namespace, timeoutMs: settings.timeoutMs }, settings.ca);
    this.#tokens = new VaultTokenManager(settings.auth, (call, token, signal) => this.#transport.send(call, token, signal), { logger: options.logger });
  }

  get address(): string {
    return this.#settings.address.origin;
  }

  get namespace(): string | undefined {
    return this.#settings.namespace;
  }

  toJSON(): Record<string, unknown> {
    return { address: this.address, namespace: this.namespace ?? null, authMethod: this.#tokens.methodName };
  }

  [inspect.custom](): string {
    return `VaultClient ${JSON.stringify(this.toJSON())}`;
  }

  /** Reads sys/health, which needs no token. A sealed or standby server returns its health with a non-200 status. */
  async health(ctx: VaultCallContext = {}): Promise<VaultHealth & { httpStatus: number }> {
    const call: VaultCall = { method: 'GET', path: 'sys/health' };
    const response = await this.#transport.send(call, undefined, ctx.signal);
    if (typeof response.body !== 'object' || response.body === null) throw responseError(call, response, []);
    return { ...parseWith(call, response.body, parseHealth), httpStatus: response.status };
  }

  /** Looks up the client's own token, logging in first if needed. */
  async lookupSelf(ctx: VaultCallContext = {}): Promise<VaultTokenInfo> {
    const call: VaultCall = { method: 'GET', path: 'auth/token/lookup-self' };
    return parseWith(call, (await this.#request(call, ctx)).body, parseTokenLookup);
  }

  /** Returns the client token's capabilities on each path, such as `["create", "read"]`, `["root"]` or `["deny"]`. */
  async capabilitiesSelf(paths: readonly string[], ctx: VaultCallContext = {}): Promise<Record<string, string[]>> {
    const call: VaultCall = { method: 'POST', path: 'sys/capabilities-self', body: { paths: [...paths] } };
    return parseWith(call, (await this.#request(call, ctx)).body, (body) => parseCapabilities(body, paths));
  }

  /**
   * Reads a KV version 2 secret: the current version, or `version`. Returns null when the key or
   * version does not exist, and a version with null data when it is soft-deleted or destroyed.
   */
  async readKv(mount: string, path: string, ctx: VaultCallContext = {}, options: { version?: number } = {}): Promise<KvVersion | null> {
    const query: Record<string, string> = options.version === undefined ? {} : { version: String(options.version) };
    const call: VaultCall = { method: 'GET', path: kvPath(mount, 'data', path), query };
    const response = await this.#request(call, ctx, [404]);
    if (response.status === 404 && !hasData(response)) return null;
    return parseWith(call, response.body, parseKvVersion);
  }

  /**
   * Writes a new version of a KV version 2 secret. With `cas`, Vault writes only if the current
   * version is `cas` (0: only if the key has no version), else it throws STORE_CONFLICT.
   */
  async writeKv(
    mount: string, path: string, data: Record<string, string | SecretValue>, options: { cas?: number } = {}, ctx: VaultCallContext = {},
  ): Promise<KvVersionMetadata> {
    const body: RequestBody = options.cas === undefined ? { data } : { options: { cas: options.cas }, data };
    const call: VaultCall = { method: 'POST', path: kvPath(mount, 'data', path), body };
    return parseWith(call, (await this.#request(call, ctx)).body, parseKvWrite);
  }

  /** Reads a KV key's metadata and version list, or null when the key does not exist. */
  async readKvMetadata(mount: string, path: string, ctx: VaultCallContext = {}): Promise<KvMetadata | null> {
    const call: VaultCall = { method: 'GET', path: kvPath(mount, 'metadata', path) };
    const response = await this.#request(call, ctx, [404]);
    return response.status === 404 ? null : parseWith(call, response.body, parseKvMetadata);
  }

  /** Writes a KV key's metadata, creating the key without a version if needed. `customMetadata` replaces the whole map. */
  async writeKvMetadata(
    mount: string, path: string, metadata: { customMetadata?: Record<string, string>; maxVersions?: number }, ctx: VaultCallContext = {},
  ): Promise<void> {
    const body: RequestBody = {};
    if (metadata.customMetadata !== undefined) body.custom_metadata = metadata.customMetadata;
    if (metadata.maxVersions !== undefined) body.max_versions = metadata.maxVersions;
    await this.#request({ method: 'POST', path: kvPath(mount, 'metadata', path), body }, ctx);
  }

  /** Deletes a KV key with all its versions and metadata. Deleting a missing key succeeds. */
  async deleteKvMetadata(mount: string, path: string, ctx: VaultCallContext = {}): Promise<void> {
    await this.#request({ method: 'DELETE', path: kvPath(mount, 'metadata', path) }, ctx, [404]);
  }

  /** Lists the keys under a KV folder, where folders end in `/`. An empty or missing folder gives []. */
  async listKv(mount: string, folder: string, ctx: VaultCallContext = {}): Promise<string[]> {
    const call: VaultCall = { method: 'LIST', path: kvPath(mount, 'metadata', `${folder.replace(/\/+$/, '')}/`) };
    const response = await this.#request(call, ctx, [404]);
    return response.status === 404 ? [] : parseWith(call, response.body, parseKeys);
  }

  /** Reads an AppRole role's role ID, or null when the role does not exist. */
  async readAppRoleRoleId(mount: string, role: string, ctx: VaultCallContext = {}): Promise<string | null> {
    const call: VaultCall = { method: 'GET', path: appRolePath(mount, role, 'role-id') };
    const response = await this.#request(call, ctx, [404]);
    return response.status === 404 ? null : parseWith(call, response.body, parseRoleId);
  }

  /** Creates a secret ID for an AppRole role, with `metadata` attached to it in Vault. */
  async createAppRoleSecretId(mount: string, role: string, metadata: Record<string, string>, ctx: VaultCallContext = {}): Promise<CreatedSecretId> {
    const call: VaultCall = { method: 'POST', path: appRolePath(mount, role, 'secret-id'), body: { metadata: JSON.stringify(metadata) } };
    return parseWith(call, (await this.#request(call, ctx)).body, parseCreatedSecretId);
  }

  /** Lists the accessors of an AppRole role's secret IDs, or [] when it has none. */
  async listAppRoleSecretIdAccessors(mount: string, role: string, ctx: VaultCallContext = {}): Promise<string[]> {
    const call: VaultCall = { method: 'LIST', path: appRolePath(mount, role, 'secret-id') };
    const response = await this.#request(call, ctx, [404]);
    return response.status === 404 ? [] : parseWith(call, response.body, parseKeys);
  }

  /** Looks a secret ID up by its accessor, or returns null when it does not exist. */
  async lookupAppRoleSecretIdAccessor(mount: string, role: string, accessor: string, ctx: VaultCallContext = {}): Promise<SecretIdInfo | null> {
    const call: VaultCall = { method: 'POST', path: appRolePath(mount, role, 'secret-id-accessor/lookup'), body: { secret_id_accessor: accessor } };
    const response = await this.#request(call, ctx, [204, 404, 400, 500]);
    if (response.status === 204 || response.status === 404) return null;
    // Vault before 1.9 reports a missing accessor as a 500 with this text.
    if (response.status !== 200) {
      if (vaultErrorsOf(response.body).some((error) => error.includes(ACCESSOR_NOT_FOUND_ERROR))) return null;
      throw responseError(call, response, []);
    }
    return parseWith(call, response.body, parseSecretIdInfo);
  }

  /** Looks a secret ID up by its value without using up a login, or returns null when Vault has no such secret ID. */
  async lookupAppRoleSecretId(mount: string, role: string, secretId: SecretValue, ctx: VaultCallContext = {}): Promise<SecretIdInfo | null> {
    const call: VaultCall = { method: 'POST', path: appRolePath(mount, role, 'secret-id/lookup'), body: { secret_id: secretId } };
    const response = await this.#request(call, ctx, [204, 404]);
    return response.status === 200 ? parseWith(call, response.body, parseSecretIdInfo) : null;
  }

  /** Destroys a secret ID by its accessor. Vault fails with a 500 when the accessor does not exist. */
  async destroyAppRoleSecretIdAccessor(mount: string, role: string, accessor: string, ctx: VaultCallContext = {}): Promise<void> {
    await this.#request({ method: 'POST', path: appRolePath(mount, role, 'secret-id-accessor/destroy'), body: { secret_id_accessor: accessor } }, ctx);
  }

  /**
   * Logs in with an AppRole pair, without the client's token, and returns the issued token. The
   * client's own token is unaffected. Throws a VaultApiError with `httpStatus` 400 for a rejected pair.
   */
  async logInWithAppRole(mount: string, roleId: string, secretId: SecretValue, ctx: VaultCallContext = {}): Promise<VaultAuth> {
    return logInWithAppRole((call, token, signal) => this.#transport.send(call, token, signal), mount, roleId, secretId, ctx);
  }

  /** Revokes `token` with its own revoke-self. A token that is already invalid counts as revoked. */
  async revokeToken(token: SecretValue, ctx: VaultCallContext = {}): Promise<void> {
    const call: VaultCall = { method: 'POST', path: 'auth/token/revoke-self' };
    const response = await this.#transport.send(call, token, ctx.signal);
    if (response.status >= 300 && response.status !== 403) throw responseError(call, response, [token]);
  }

  /** Stops token renewal and closes idle connections. The client's token stays valid until it expires. */
  close(): void {
    this.#tokens.close();
    this.#transport.close();
  }

  /**
   * Sends an authenticated request and returns a 2xx response or one whose status is in `accepted`.
   * Any other status throws. A 403 caused by a dead token is retried once after logging in again.
   */
  async #request(call: VaultCall, ctx: VaultCallContext, accepted: readonly number[] = []): Promise<VaultHttpResponse> {
    let token = await this.#tokens.token(ctx);
    let response = await this.#transport.send(call, token, ctx.signal);
    if (response.status === 403 && (await this.#tokens.retryAfterDenied(token, ctx))) {
      loggerOf(ctx).info({ call: `${call.method} ${call.path}` }, 'sending the Vault request again with a new token');
      token = await this.#tokens.token(ctx);
      response = await this.#transport.send(call, token, ctx.signal);
    }

    if ((response.status >= 200 && response.status < 300) || accepted.includes(response.status)) return response;
    throw responseError(call, response, [token, ...secretsOf(call.body)]);
  }
}

/** Returns whether a 404 carries a `data` object, as the read of a deleted KV version does. */
function hasData(response: VaultHttpResponse): boolean {
  const data = (response.body as { data?: unknown } | null | undefined)?.data;
  return typeof data === 'object' && data !== null;
}
