import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A HashiCorp Vault HTTP API stand-in for tests, listening on 127.0.0.1 on a free port. It is
 * written from Vault's public API reference and serves, under /v1/:
 *
 * - `sys/health` (200 when active, 503 when sealed) and `sys/capabilities-self`;
 * - the token auth method's `lookup-self`, `renew-self` and `revoke-self`, with TTLs, max TTLs
 *   and renewal capped at the max TTL;
 * - the AppRole auth method: login, role-id, secret-id (create and list), secret-id lookup and
 *   destroy, and their accessor variants;
 * - the Kubernetes auth method's login, which accepts the JWTs a test registers;
 * - the KV version 2 secrets engine: data (read by version, write with check-and-set), metadata
 *   (read, list, write, delete), delete, undelete and destroy.
 *
 * Status codes and bodies follow Vault. Errors are `{"errors":[...]}`, and an empty LIST or a
 * missing secret is 404 `{"errors":[]}`. An unknown, expired or missing token gets 403
 * `{"errors":["permission denied"]}`. A soft-deleted or destroyed KV version reads as 404 with its
 * version metadata. The `X-Vault-Namespace` header selects a namespace, and namespaces do not share
 * KV data, roles or tokens, but a token of the root namespace works in every namespace.
 *
 * Policies are a reduced form of Vault's ACLs: a rule grants capabilities on an exact path, a path
 * ending in `*` (prefix) or containing `+` (one segment). Tests can seal the server, inject error
 * responses for matching paths, delay every response and read back the requests it received.
 *
 * LIST requests arrive as `GET ...?list=true`, which Vault treats as LIST, because Node's HTTP
 * server rejects the LIST method. The request log records them as LIST.
 */

export type Capability = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list' | 'sudo' | 'deny';

export interface PolicyRule {
  path: string;
  capabilities: Capability[];
}

export interface FakeTokenOptions {
  /** Policy names, where `root` grants everything. Default `["root"]`. */
  policies?: string[];
  /** Time to live in seconds. The default 0 means that the token never expires, as a root token. */
  ttlSeconds?: number;
  /** Maximum lifetime in seconds from issue, which renewals cannot exceed. Default 32 days. */
  maxTtlSeconds?: number;
  renewable?: boolean;
  namespace?: string;
}

export interface FakeAppRoleOptions {
  policies?: string[];
  tokenTtlSeconds?: number;
  tokenMaxTtlSeconds?: number;
  /** Lifetime of each secret ID in seconds, or 0 for no expiry. */
  secretIdTtlSeconds?: number;
  /** Number of logins each secret ID allows, or 0 for no limit. */
  secretIdNumUses?: number;
  mount?: string;
  namespace?: string;
}

export interface FakeKubernetesRoleOptions {
  policies?: string[];
  tokenTtlSeconds?: number;
  tokenMaxTtlSeconds?: number;
  mount?: string;
  namespace?: string;
}

export interface FakeVaultOptions {
  /** KV version 2 mounts. Default `["secret"]`. */
  kvMounts?: string[];
  /** AppRole auth mounts. Default `["approle"]`. */
  appRoleMounts?: string[];
  /** Kubernetes auth mounts. Default `["kubernetes"]`. */
  kubernetesMounts?: string[];
  /** Makes every KV write require the `cas` option, as the engine's `cas_required` setting does. */
  casRequired?: boolean;
  /** Serves HTTPS with this PEM key and certificate instead of plain HTTP. */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface RecordedVaultRequest {
  /** The HTTP method, or LIST for a `GET ...?list=true`. */
  method: string;
  /** The API path after /v1/, without the query string, such as `secret/data/app`. */
  path: string;
  query: string;
  /** The `X-Vault-Namespace` header without surrounding slashes, empty for the root namespace. */
  namespace: string;
  /** Time of arrival, in milliseconds since the epoch. */
  at: number;
}

/** Error responses sent to the next `count` requests that match `method` and `path`. */
export interface InjectedVaultFailure {
  status: number;
  count: number;
  /** An API path prefix (after /v1/) or a pattern. Every path matches when it is unset. */
  path?: string | RegExp;
  method?: string;
  /** The `errors` of the body. When unset, a message that fits the status. */
  errors?: string[];
}

/** Default and maximum token TTL of a Vault server without tuning: 768 hours. */
const SYSTEM_MAX_TTL_SECONDS = 768 * 3600;
const DEFAULT_MAX_VERSIONS = 10;
/** Limits of KV custom metadata (vault-plugin-secrets-kv, path_metadata.go). */
const MAX_CUSTOM_METADATA_KEYS = 64;
const MAX_CUSTOM_METADATA_KEY_LENGTH = 128;
const MAX_CUSTOM_METADATA_VALUE_LENGTH = 512;

const PERMISSION_DENIED = 'permission denied';
const CAS_MISMATCH = 'check-and-set parameter did not match the current version';
const CAS_REQUIRED = 'check-and-set parameter required for this call';
const INVALID_APPROLE_LOGIN = 'invalid role or secret ID';

/** Paths that Vault's built-in `default` policy opens to every token. */
const DEFAULT_POLICY_RULES: PolicyRule[] = [
  { path: 'auth/token/lookup-self', capabilities: ['read', 'update'] },
  { path: 'auth/token/renew-self', capabilities: ['update'] },
  { path: 'auth/token/revoke-self', capabilities: ['update'] },
  { path: 'sys/capabilities-self', capabilities: ['update'] },
];

interface TokenRecord {
  accessor: string;
  policies: string[];
  /** The TTL the token was created with, in seconds, or 0 for a token that never expires. */
  creationTtl: number;
  explicitMaxTtl: number;
  /** The lease granted by the last login, creation or renewal, in seconds. */
  lease: number;
  issuedAt: number;
  expiresAt: number | null;
  maxExpiresAt: number | null;
  renewable: boolean;
  namespace: string;
  path: string;
  meta: Record<string, string> | null;
}

interface SecretIdRecord {
  accessor: string;
  createdAt: number;
  expiresAt: number | null;
  numUses: number;
  ttl: number;
  metadata: Record<string, string>;
}

interface AppRoleRecord {
  name: string;
  roleId: string;
  policies: string[];
  tokenTtl: number;
  tokenMaxTtl: number;
  secretIdTtl: number;
  secretIdNumUses: number;
  /** Secret IDs by value. */
  secretIds: Map<string, SecretIdRecord>;
}

interface KubernetesRoleRecord {
  policies: string[];
  tokenTtl: number;
  tokenMaxTtl: number;
  /** Registered JWTs, mapped to the service account each one names. */
  jwts: Map<string, string>;
}

interface KvVersionRecord {
  data: Record<string, unknown> | null;
  createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

interface KvEntry {
  currentVersion: number;
  oldestVersion: number;
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfter: string;
  customMetadata: Record<string, string> | null;
  createdTime: string;
  updatedTime: string;
  versions: Map<number, KvVersionRecord>;
}

/** Everything one namespace keeps apart from the others. */
interface NamespaceState {
  kv: Map<string, Map<string, KvEntry>>;
  appRoles: Map<string, Map<string, AppRoleRecord>>;
  kubernetesRoles: Map<string, Map<string, KubernetesRoleRecord>>;
}

interface Reply {
  status: number;
  body?: unknown;
}

interface ParsedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  namespace: string;
  token: string | undefined;
  body: Record<string, unknown>;
}

export class FakeVault {
  readonly requests: RecordedVaultRequest[] = [];
  /** The root token, created at start. It never expires and carries the `root` policy. */
  readonly rootToken: string;

  private readonly server: Server;
  private readonly kvMounts: string[];
  private readonly appRoleMounts: string[];
  private readonly kubernetesMounts: string[];
  private readonly casRequired: boolean;
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly policies = new Map<string, PolicyRule[]>();
  private readonly namespaces = new Map<string, NamespaceState>();
  private readonly failures: InjectedVaultFailure[] = [];
  private readonly pendingTimers = new Set<NodeJS.Timeout>();
  private readonly scheme: 'http' | 'https';
  private sealed = false;
  private delayMs = 0;
  private origin = '';

  private constructor(options: FakeVaultOptions) {
    this.kvMounts = [...(options.kvMounts ?? ['secret'])].sort((a, b) => b.length - a.length);
    this.appRoleMounts = options.appRoleMounts ?? ['approle'];
    this.kubernetesMounts = options.kubernetesMounts ?? ['kubernetes'];
    this.casRequired = options.casRequired ?? false;
    const handler = (request: IncomingMessage, response: ServerResponse): void => this.handle(request, response);
    this.server = options.tls === undefined ? createServer(handler) : createTlsServer(options.tls, handler);
    this.scheme = options.tls === undefined ? 'http' : 'https';
    this.rootToken = this.createToken({ policies: ['root'] });
  }

  static async start(options: FakeVaultOptions = {}): Promise<FakeVault> {
    const fake = new FakeVault(options);
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      fake.server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = fake.server.address() as AddressInfo;
    fake.origin = `${fake.scheme}://127.0.0.1:${port}`;
    return fake;
  }

  /** The server's address, http(s)://127.0.0.1:<port>, as REKEY_VAULT_ADDR takes it. */
  get url(): string {
    return this.origin;
  }

  /** Stops the server. Closing it again does nothing. */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    for (const timer of this.pendingTimers) clearTimeout(timer);
    this.pendingTimers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((error) => (error === undefined ? resolve() : reject(error))));
  }

  // Set-up and inspection for tests.

  definePolicy(name: string, rules: PolicyRule[]): void {
    this.policies.set(name, rules);
  }

  /** Creates a token and returns it. */
  createToken(options: FakeTokenOptions = {}): string {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    this.tokens.set(token, this.newTokenRecord({
      policies: options.policies ?? ['root'],
      ttl: options.ttlSeconds ?? 0,
      maxTtl: options.maxTtlSeconds ?? 0,
      renewable: options.renewable ?? true,
      namespace: normalizeNamespace(options.namespace ?? ''),
      path: 'auth/token/create',
      meta: null,
    }));
    return token;
  }

  /** Revokes the token with this accessor, as `vault token revoke -accessor` does. Returns whether it existed. */
  revokeAccessor(accessor: string): boolean {
    for (const [token, record] of this.tokens) {
      if (record.accessor === accessor) return this.tokens.delete(token);
    }
    return false;
  }

  /** Returns whether `token` exists and has not expired. */
  isTokenValid(token: string): boolean {
    return this.liveToken(token) !== null;
  }

  /** Creates an AppRole role and returns its role ID. */
  createAppRole(name: string, options: FakeAppRoleOptions = {}): string {
    const roles = this.appRolesOf(normalizeNamespace(options.namespace ?? ''), options.mount ?? 'approle');
    const roleId = randomUUID();
    roles.set(name, {
      name,
      roleId,
      policies: options.policies ?? ['default'],
      tokenTtl: options.tokenTtlSeconds ?? 0,
      tokenMaxTtl: options.tokenMaxTtlSeconds ?? 0,
      secretIdTtl: options.secretIdTtlSeconds ?? 0,
      secretIdNumUses: options.secretIdNumUses ?? 0,
      secretIds: new Map(),
    });
    return roleId;
  }

  /** Lists the accessors of a role's live secret IDs, sorted. */
  secretIdAccessors(role: string, options: { mount?: string; namespace?: string } = {}): string[] {
    const record = this.appRolesOf(normalizeNamespace(options.namespace ?? ''), options.mount ?? 'approle').get(role);
    if (record === undefined) return [];
    this.purgeExpiredSecretIds(record);
    return [...record.secretIds.values()].map((entry) => entry.accessor).sort();
  }

  createKubernetesRole(name: string, options: FakeKubernetesRoleOptions = {}): void {
    const roles = this.kubernetesRolesOf(normalizeNamespace(options.namespace ?? ''), options.mount ?? 'kubernetes');
    roles.set(name, {
      policies: options.policies ?? ['default'],
      tokenTtl: options.tokenTtlSeconds ?? 0,
      tokenMaxTtl: options.tokenMaxTtlSeconds ?? 0,
      jwts: new Map(),
    });
  }

  /** Makes the Kubernetes role accept `jwt` at login, as a token of `serviceAccount`. */
  registerKubernetesJwt(role: string, jwt: string, options: { serviceAccount?: string; mount?: string; namespace?: string } = {}): void {
    const record = this.kubernetesRolesOf(normalizeNamespace(options.namespace ?? ''), options.mount ?? 'kubernetes').get(role);
    if (record === undefined) throw new Error(`fake Vault has no Kubernetes role "${role}"`);
    record.jwts.set(jwt, options.serviceAccount ?? 'default');
  }

  /** Writes a KV version directly, without a request, as another writer would. Returns the version. */
  writeKv(path: string, data: Record<string, unknown>, options: { mount?: string; namespace?: string } = {}): number {
    const entries = this.kvOf(normalizeNamespace(options.namespace ?? ''), options.mount ?? 'secret');
    const entry = entries.get(path) ?? newKvEntry();
    entries.set(path, entry);
    return addKvVersion(entry, data);
  }

  /** Returns the data of the current version of a KV secret, or null if it has none or it is deleted. */
  readKv(path: string, options: { mount?: string; namespace?: string; version?: number } = {}): Record<string, unknown> | null {
    const entry = this.kvOf(normalizeNamespace(options.namespace ?? ''), options.mount ?? 'secret').get(path);
    const version = entry?.versions.get(options.version ?? entry.currentVersion);
    if (version === undefined || !isReadable(version)) return null;
    return version.data;
  }

  /** Returns a KV secret's custom metadata, or null if the key does not exist. */
  kvCustomMetadata(path: string, options: { mount?: string; namespace?: string } = {}): Record<string, string> | null {
    const entry = this.kvOf(normalizeNamespace(options.namespace ?? ''), options.mount ?? 'secret').get(path);
    return entry === undefined ? null : { ...(entry.customMetadata ?? {}) };
  }

  /** Lists every KV key of a mount, sorted. */
  kvKeys(options: { mount?: string; namespace?: string } = {}): string[] {
    return [...this.kvOf(normalizeNamespace(options.namespace ?? ''), options.mount ?? 'secret').keys()].sort();
  }

  seal(): void {
    this.sealed = true;
  }

  unseal(): void {
    this.sealed = false;
  }

  injectFailure(failure: InjectedVaultFailure): void {
    this.failures.push({ ...failure });
  }

  /** Delays every response by `ms` milliseconds. */
  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  /** Counts the received requests with `method` whose path equals `path` or matches it. */
  count(method: string, path: string | RegExp): number {
    return this.requests.filter((request) => request.method === method && matchesPath(request.path, path)).length;
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  // Request handling.

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const reply = this.process(request, Buffer.concat(chunks).toString('utf8'));
      const send = (): void => {
        if (response.destroyed) return;
        if (reply.status === 204 || reply.body === undefined) {
          response.writeHead(reply.status);
          response.end();
          return;
        }
        response.writeHead(reply.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(reply.body));
      };
      if (this.delayMs === 0) {
        send();
        return;
      }
      const timer = setTimeout(() => {
        this.pendingTimers.delete(timer);
        send();
      }, this.delayMs);
      this.pendingTimers.add(timer);
    });
  }

  private process(request: IncomingMessage, rawBody: string): Reply {
    const url = new URL(request.url ?? '/', 'http://vault.invalid');
    const isList = request.method === 'LIST' || (request.method === 'GET' && url.searchParams.get('list') === 'true');
    const method = isList ? 'LIST' : (request.method ?? '');
    const namespace = normalizeNamespace(headerValue(request, 'x-vault-namespace') ?? '');
    const path = url.pathname.startsWith('/v1/') ? url.pathname.slice('/v1/'.length) : url.pathname;
    this.requests.push({ method, path, query: url.search, namespace, at: Date.now() });

    if (!url.pathname.startsWith('/v1/')) return { status: 404, body: { errors: [] } };
    if (path === 'sys/health' && method === 'GET') return this.health(url.searchParams);
    if (this.sealed) return errorReply(503, 'Vault is sealed');

    const failure = this.takeFailure(method, path);
    if (failure !== undefined) return errorReply(failure.status, ...(failure.errors ?? [defaultErrorText(failure.status)]));

    let body: Record<string, unknown> = {};
    if (rawBody.trim() !== '') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(rawBody);
      } catch (error) {
        return errorReply(400, `failed to parse JSON input: ${(error as Error).message}`);
      }
      if (!isRecord(parsed)) return errorReply(400, 'failed to parse JSON input: expected a JSON object');
      body = parsed;
    }

    const parsed: ParsedRequest = { method, path, query: url.searchParams, namespace, token: requestToken(request), body };
    return this.route(parsed);
  }

  private route(request: ParsedRequest): Reply {
    const { path } = request;
    if (path === 'sys/capabilities-self') return this.authorized(request, 'update', () => this.capabilitiesSelf(request));
    if (path.startsWith('auth/token/')) return this.tokenEndpoint(request);

    for (const mount of this.appRoleMounts) {
      if (path.startsWith(`auth/${mount}/`)) return this.appRoleEndpoint(request, mount, path.slice(`auth/${mount}/`.length));
    }
    for (const mount of this.kubernetesMounts) {
      if (path === `auth/${mount}/login`) return this.kubernetesLogin(request, mount);
    }
    for (const mount of this.kvMounts) {
      if (path.startsWith(`${mount}/`)) return this.kvEndpoint(request, mount, path.slice(mount.length + 1));
    }
    return errorReply(404, `no handler for route "${path}". route entry not found.`);
  }

  private health(query: URLSearchParams): Reply {
    const status = this.sealed ? Number(query.get('sealedcode') ?? 503) : Number(query.get('activecode') ?? 200);
    return {
      status,
      body: {
        initialized: true,
        sealed: this.sealed,
        standby: this.sealed,
        performance_standby: false,
        replication_performance_mode: 'disabled',
        replication_dr_mode: 'disabled',
        server_time_utc: Math.floor(Date.now() / 1000),
        version: '1.17.0-fake',
        cluster_name: 'vault-cluster-fake',
        cluster_id: '00000000-0000-4000-8000-000000000000',
      },
    };
  }

  private takeFailure(method: string, path: string): InjectedVaultFailure | undefined {
    const index = this.failures.findIndex((failure) =>
      (failure.method === undefined || failure.method === method) && (failure.path === undefined || matchesPath(path, failure.path, true)));
    const failure = this.failures[index];
    if (failure === undefined) return undefined;
    failure.count -= 1;
    if (failure.count <= 0) this.failures.splice(index, 1);
    return failure;
  }

  // Tokens and policies.

  private newTokenRecord(input: {
    policies: string[]; ttl: number; maxTtl: number; renewable: boolean; namespace: string; path: string; meta: Record<string, string> | null;
  }): TokenRecord {
    const now = Date.now();
    const expires = input.ttl > 0;
    const maxTtl = input.maxTtl > 0 ? input.maxTtl : SYSTEM_MAX_TTL_SECONDS;
    const ttl = Math.min(input.ttl, maxTtl);
    return {
      accessor: randomBytes(18).toString('base64url'),
      policies: input.policies,
      creationTtl: expires ? ttl : 0,
      explicitMaxTtl: input.maxTtl,
      lease: expires ? ttl : 0,
      issuedAt: now,
      expiresAt: expires ? now + ttl * 1000 : null,
      maxExpiresAt: expires ? now + maxTtl * 1000 : null,
      renewable: expires && input.renewable,
      namespace: input.namespace,
      path: input.path,
      meta: input.meta,
    };
  }

  private issueToken(input: {
    policies: string[]; ttl: number; maxTtl: number; namespace: string; path: string; meta: Record<string, string>;
  }): [string, TokenRecord] {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    const record = this.newTokenRecord({ ...input, ttl: input.ttl > 0 ? input.ttl : SYSTEM_MAX_TTL_SECONDS, renewable: true });
    this.tokens.set(token, record);
    return [token, record];
  }

  /** Returns the token's record, or null when it is unknown or expired. An expired token is deleted. */
  private liveToken(token: string | undefined): TokenRecord | null {
    if (token === undefined) return null;
    const record = this.tokens.get(token);
    if (record === undefined) return null;
    if (record.expiresAt !== null && record.expiresAt <= Date.now()) {
      this.tokens.delete(token);
      return null;
    }
    return record;
  }

  /** Runs `action` if the request's token is live in the request's namespace and has `capability` on its path. */
  private authorized(request: ParsedRequest, capability: Capability | 'write', action: (token: TokenRecord) => Reply): Reply {
    const token = this.liveToken(request.token);
    if (token === null || !namespaceContains(token.namespace, request.namespace)) return errorReply(403, PERMISSION_DENIED);

    const granted = this.capabilities(token, request.path);
    const allowed = granted.includes('root') ||
      (!granted.includes('deny') && (capability === 'write' ? granted.includes('create') || granted.includes('update') : granted.includes(capability)));
    if (!allowed) return errorReply(403, PERMISSION_DENIED);
    return action(token);
  }

  private capabilities(token: TokenRecord, path: string): string[] {
    if (token.policies.includes('root')) return ['root'];
    const rules = [...DEFAULT_POLICY_RULES, ...token.policies.flatMap((name) => this.policies.get(name) ?? [])];
    const granted = new Set<string>();
    for (const rule of rules) {
      if (rulePathMatches(rule.path, path)) for (const capability of rule.capabilities) granted.add(capability);
    }
    if (granted.has('deny')) return ['deny'];
    return granted.size === 0 ? ['deny'] : [...granted].sort();
  }

  private capabilitiesSelf(request: ParsedRequest): Reply {
    const token = this.liveToken(request.token);
    if (token === null) return errorReply(403, PERMISSION_DENIED);
    let paths: unknown[] | null = null;
    if (Array.isArray(request.body.paths)) paths = request.body.paths;
    else if (typeof request.body.path === 'string') paths = [request.body.path];
    if (paths === null || paths.length === 0 || !paths.every((path) => typeof path === 'string')) return errorReply(400, 'missing paths');

    const result: Record<string, string[]> = {};
    for (const path of paths as string[]) result[path] = this.capabilities(token, path.replace(/^\/+/, ''));
    if (paths.length === 1) result.capabilities = result[paths[0] as string] ?? ['deny'];
    return { status: 200, body: { ...result, ...envelope(result) } };
  }

  private tokenEndpoint(request: ParsedRequest): Reply {
    const operation = request.path.slice('auth/token/'.length);
    if (operation === 'lookup-self' && (request.method === 'GET' || request.method === 'POST')) {
      return this.authorized(request, request.method === 'GET' ? 'read' : 'update', (token) => ok(this.tokenLookup(request.token ?? '', token)));
    }
    if (operation === 'renew-self' && request.method === 'POST') {
      return this.authorized(request, 'update', (token) => this.renewSelf(request, token));
    }
    if (operation === 'revoke-self' && request.method === 'POST') {
      return this.authorized(request, 'update', () => {
        this.tokens.delete(request.token ?? '');
        return { status: 204 };
      });
    }
    return errorReply(405, 'unsupported operation');
  }

  private tokenLookup(token: string, record: TokenRecord): Record<string, unknown> {
    const now = Date.now();
    return {
      accessor: record.accessor,
      creation_time: Math.floor(record.issuedAt / 1000),
      creation_ttl: record.creationTtl,
      display_name: 'token',
      entity_id: '',
      expire_time: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
      explicit_max_ttl: record.explicitMaxTtl,
      id: token,
      issue_time: new Date(record.issuedAt).toISOString(),
      meta: record.meta,
      num_uses: 0,
      orphan: true,
      path: record.path,
      policies: record.policies,
      renewable: record.renewable,
      ttl: record.expiresAt === null ? 0 : Math.max(0, Math.floor((record.expiresAt - now) / 1000)),
      type: 'service',
    };
  }

  private renewSelf(request: ParsedRequest, record: TokenRecord): Reply {
    if (record.expiresAt === null || record.maxExpiresAt === null || !record.renewable) {
      return errorReply(400, 'lease is not renewable');
    }
    const increment = parseDurationSeconds(request.body.increment) ?? record.creationTtl;
    const now = Date.now();
    const requested = now + increment * 1000;
    record.expiresAt = Math.min(requested, record.maxExpiresAt);
    record.lease = Math.floor((record.expiresAt - now) / 1000);
    const warnings = requested > record.maxExpiresAt
      ? [`TTL of "${increment}s" exceeded the effective max_ttl of "${Math.floor((record.maxExpiresAt - now) / 1000)}s"; TTL value is capped accordingly`]
      : null;
    return { status: 200, body: { ...envelope(null, warnings), auth: this.authBlock(request.token ?? '', record) } };
  }

  private authBlock(token: string, record: TokenRecord): Record<string, unknown> {
    return {
      client_token: token,
      accessor: record.accessor,
      policies: record.policies,
      token_policies: record.policies,
      metadata: record.meta,
      lease_duration: record.lease,
      renewable: record.renewable,
      entity_id: '',
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    };
  }

  // AppRole.

  private appRoleEndpoint(request: ParsedRequest, mount: string, rest: string): Reply {
    const roles = this.appRolesOf(request.namespace, mount);
    if (rest === 'login') return request.method === 'POST' || request.method === 'PUT' ? this.appRoleLogin(request, roles, mount) : errorReply(405, 'unsupported operation');

    const match = /^role\/([^/]+)\/(role-id|secret-id|secret-id\/lookup|secret-id\/destroy|secret-id-accessor\/lookup|secret-id-accessor\/destroy)$/.exec(rest);
    if (match === null) return errorReply(404, `no handler for route "${request.path}". route entry not found.`);
    const roleName = decodeURIComponent(match[1] ?? '');
    const operation = match[2] ?? '';
    const role = roles.get(roleName);

    if (operation === 'role-id') {
      if (request.method !== 'GET') return errorReply(405, 'unsupported operation');
      return this.authorized(request, 'read', () => (role === undefined ? notFound() : ok({ role_id: role.roleId })));
    }
    if (operation === 'secret-id' && request.method === 'LIST') {
      return this.authorized(request, 'list', () => {
        if (role === undefined) return errorReply(400, `role "${roleName}" does not exist`);
        this.purgeExpiredSecretIds(role);
        const accessors = [...role.secretIds.values()].map((entry) => entry.accessor).sort();
        return accessors.length === 0 ? notFound() : ok({ keys: accessors });
      });
    }
    if (request.method !== 'POST' && request.method !== 'PUT' && !(request.method === 'DELETE' && operation.endsWith('/destroy'))) {
      return errorReply(405, 'unsupported operation');
    }
    return this.authorized(request, 'write', () => {
      if (role === undefined) {
        return operation === 'secret-id'
          ? errorReply(400, `role "${roleName}" does not exist`)
          : internalError(`role "${roleName}" does not exist`);
      }
      this.purgeExpiredSecretIds(role);
      return this.secretIdOperation(request, role, operation);
    });
  }

  private secretIdOperation(request: ParsedRequest, role: AppRoleRecord, operation: string): Reply {
    const body = request.body;
    if (operation === 'secret-id') {
      const metadata = parseSecretIdMetadata(body.metadata);
      if (metadata === null) return errorReply(400, 'failed to parse metadata: expected a JSON object of strings');
      const secretId = randomUUID();
      const accessor = randomUUID();
      const now = Date.now();
      role.secretIds.set(secretId, {
        accessor,
        createdAt: now,
        expiresAt: role.secretIdTtl > 0 ? now + role.secretIdTtl * 1000 : null,
        numUses: role.secretIdNumUses,
        ttl: role.secretIdTtl,
        metadata,
      });
      return ok({ secret_id: secretId, secret_id_accessor: accessor, secret_id_ttl: role.secretIdTtl, secret_id_num_uses: role.secretIdNumUses });
    }

    if (operation === 'secret-id/lookup' || operation === 'secret-id/destroy') {
      if (typeof body.secret_id !== 'string' || body.secret_id === '') return errorReply(400, 'missing secret_id');
      const entry = role.secretIds.get(body.secret_id);
      if (operation === 'secret-id/destroy') {
        role.secretIds.delete(body.secret_id);
        return { status: 204 };
      }
      return entry === undefined ? { status: 204 } : ok(describeSecretId(entry));
    }

    if (typeof body.secret_id_accessor !== 'string' || body.secret_id_accessor === '') return errorReply(400, 'missing secret_id_accessor');
    const accessor = body.secret_id_accessor;
    const found = [...role.secretIds.entries()].find(([, entry]) => entry.accessor === accessor);
    const missing = `failed to find accessor entry for secret_id_accessor: ${JSON.stringify(accessor)}`;
    if (operation === 'secret-id-accessor/lookup') {
      // Vault 1.9 and later respond 404 with the message in `data.error`, not in `errors`.
      return found === undefined ? { status: 404, body: envelope({ error: missing }) } : ok(describeSecretId(found[1]));
    }
    if (found === undefined) return internalError(missing);
    role.secretIds.delete(found[0]);
    return { status: 204 };
  }

  private appRoleLogin(request: ParsedRequest, roles: Map<string, AppRoleRecord>, mount: string): Reply {
    const { role_id: roleId, secret_id: secretId } = request.body;
    if (typeof roleId !== 'string' || roleId.trim() === '') return errorReply(400, 'missing role_id');
    const role = [...roles.values()].find((candidate) => candidate.roleId === roleId.trim());
    if (role === undefined) return errorReply(400, INVALID_APPROLE_LOGIN);
    if (typeof secretId !== 'string' || secretId.trim() === '') return errorReply(400, 'missing secret_id');

    this.purgeExpiredSecretIds(role);
    const entry = role.secretIds.get(secretId.trim());
    if (entry === undefined) return errorReply(400, INVALID_APPROLE_LOGIN);
    if (entry.numUses === 1) role.secretIds.delete(secretId.trim());
    else if (entry.numUses > 1) entry.numUses -= 1;

    const [token, record] = this.issueToken({
      policies: role.policies,
      ttl: role.tokenTtl,
      maxTtl: role.tokenMaxTtl,
      namespace: request.namespace,
      path: `auth/${mount}/login`,
      meta: { ...entry.metadata, role_name: role.name },
    });
    return { status: 200, body: { ...envelope(null), auth: this.authBlock(token, record) } };
  }

  private purgeExpiredSecretIds(role: AppRoleRecord): void {
    const now = Date.now();
    for (const [secretId, entry] of role.secretIds) {
      if (entry.expiresAt !== null && entry.expiresAt <= now) role.secretIds.delete(secretId);
    }
  }

  private appRolesOf(namespace: string, mount: string): Map<string, AppRoleRecord> {
    const state = this.namespaceState(namespace);
    let roles = state.appRoles.get(mount);
    if (roles === undefined) {
      roles = new Map();
      state.appRoles.set(mount, roles);
    }
    return roles;
  }

  // Kubernetes.

  private kubernetesLogin(request: ParsedRequest, mount: string): Reply {
    if (request.method !== 'POST' && request.method !== 'PUT') return errorReply(405, 'unsupported operation');
    const { role: roleName, jwt } = request.body;
    if (typeof roleName !== 'string' || roleName === '') return errorReply(400, 'missing role');
    if (typeof jwt !== 'string' || jwt === '') return errorReply(400, 'missing jwt');
    const role = this.kubernetesRolesOf(request.namespace, mount).get(roleName);
    if (role === undefined) return errorReply(400, `invalid role name "${roleName}"`);
    const serviceAccount = role.jwts.get(jwt);
    if (serviceAccount === undefined) return errorReply(403, PERMISSION_DENIED);

    const [token, record] = this.issueToken({
      policies: role.policies,
      ttl: role.tokenTtl,
      maxTtl: role.tokenMaxTtl,
      namespace: request.namespace,
      path: `auth/${mount}/login`,
      meta: { role: roleName, service_account_name: serviceAccount },
    });
    return { status: 200, body: { ...envelope(null), auth: this.authBlock(token, record) } };
  }

  private kubernetesRolesOf(namespace: string, mount: string): Map<string, KubernetesRoleRecord> {
    const state = this.namespaceState(namespace);
    let roles = state.kubernetesRoles.get(mount);
    if (roles === undefined) {
      roles = new Map();
      state.kubernetesRoles.set(mount, roles);
    }
    return roles;
  }

  // KV version 2.

  private kvEndpoint(request: ParsedRequest, mount: string, rest: string): Reply {
    const slash = rest.indexOf('/');
    const operation = slash === -1 ? rest : rest.slice(0, slash);
    const key = slash === -1 ? '' : rest.slice(slash + 1);
    const entries = this.kvOf(request.namespace, mount);

    if (operation === 'metadata' && request.method === 'LIST') {
      return this.authorized(request, 'list', () => listKeys(entries, key));
    }
    if (key === '' || key.endsWith('/')) return errorReply(404, `no handler for route "${request.path}". route entry not found.`);

    switch (operation) {
      case 'data':
        return this.kvData(request, entries, key);
      case 'metadata':
        return this.kvMetadata(request, entries, key);
      case 'delete':
      case 'undelete':
      case 'destroy':
        if (request.method !== 'POST' && request.method !== 'PUT') return errorReply(405, 'unsupported operation');
        return this.authorized(request, 'update', () => changeVersions(entries.get(key), operation, request.body.versions));
      default:
        return errorReply(404, `no handler for route "${request.path}". route entry not found.`);
    }
  }

  private kvData(request: ParsedRequest, entries: Map<string, KvEntry>, key: string): Reply {
    switch (request.method) {
      case 'GET':
        return this.authorized(request, 'read', () => readVersion(entries.get(key), request.query.get('version')));
      case 'POST':
      case 'PUT':
        return this.authorized(request, 'write', () => this.writeVersion(entries, key, request.body));
      case 'DELETE':
        return this.authorized(request, 'delete', () => {
          const entry = entries.get(key);
          const latest = entry?.versions.get(entry.currentVersion);
          if (latest !== undefined && latest.deletionTime === '' && !latest.destroyed) latest.deletionTime = new Date().toISOString();
          return { status: 204 };
        });
      default:
        return errorReply(405, 'unsupported operation');
    }
  }

  private writeVersion(entries: Map<string, KvEntry>, key: string, body: Record<string, unknown>): Reply {
    if (!isRecord(body.data)) return errorReply(400, 'no data provided');
    const entry = entries.get(key) ?? newKvEntry();
    const options = isRecord(body.options) ? body.options : {};

    if (options.cas !== undefined) {
      const cas = typeof options.cas === 'string' && /^\d+$/.test(options.cas) ? Number(options.cas) : options.cas;
      if (typeof cas !== 'number' || !Number.isInteger(cas)) return errorReply(400, 'error parsing check-and-set parameter');
      if (cas !== entry.currentVersion) return errorReply(400, CAS_MISMATCH);
    } else if (this.casRequired || entry.casRequired) {
      return errorReply(400, CAS_REQUIRED);
    }

    entries.set(key, entry);
    const version = addKvVersion(entry, body.data);
    const record = entry.versions.get(version);
    return ok({
      created_time: record?.createdTime,
      custom_metadata: entry.customMetadata,
      deletion_time: '',
      destroyed: false,
      version,
    });
  }

  private kvMetadata(request: ParsedRequest, entries: Map<string, KvEntry>, key: string): Reply {
    switch (request.method) {
      case 'GET':
        return this.authorized(request, 'read', () => {
          const entry = entries.get(key);
          return entry === undefined ? notFound() : ok(describeKvEntry(entry));
        });
      case 'POST':
      case 'PUT':
        return this.authorized(request, 'write', () => writeMetadata(entries, key, request.body));
      case 'DELETE':
        return this.authorized(request, 'delete', () => {
          entries.delete(key);
          return { status: 204 };
        });
      default:
        return errorReply(405, 'unsupported operation');
    }
  }

  private kvOf(namespace: string, mount: string): Map<string, KvEntry> {
    const state = this.namespaceState(namespace);
    let entries = state.kv.get(mount);
    if (entries === undefined) {
      entries = new Map();
      state.kv.set(mount, entries);
    }
    return entries;
  }

  private namespaceState(namespace: string): NamespaceState {
    let state = this.namespaces.get(namespace);
    if (state === undefined) {
      state = { kv: new Map(), appRoles: new Map(), kubernetesRoles: new Map() };
      this.namespaces.set(namespace, state);
    }
    return state;
  }
}

// KV helpers, free of server state.

function newKvEntry(): KvEntry {
  const now = new Date().toISOString();
  return {
    currentVersion: 0,
    oldestVersion: 0,
    maxVersions: 0,
    casRequired: false,
    deleteVersionAfter: '0s',
    customMetadata: null,
    createdTime: now,
    updatedTime: now,
    versions: new Map(),
  };
}

/** Adds a version and removes the oldest ones beyond the entry's max_versions. Returns the new version number. */
function addKvVersion(entry: KvEntry, data: Record<string, unknown>): number {
  const now = new Date().toISOString();
  entry.currentVersion += 1;
  entry.updatedTime = now;
  entry.versions.set(entry.currentVersion, { data: structuredClone(data), createdTime: now, deletionTime: '', destroyed: false });

  const maxVersions = entry.maxVersions > 0 ? entry.maxVersions : DEFAULT_MAX_VERSIONS;
  for (const version of [...entry.versions.keys()].sort((a, b) => a - b)) {
    if (entry.versions.size <= maxVersions) break;
    entry.versions.delete(version);
  }
  entry.oldestVersion = Math.min(...entry.versions.keys());
  return entry.currentVersion;
}

function isReadable(version: KvVersionRecord): boolean {
  return !version.destroyed && (version.deletionTime === '' || Date.parse(version.deletionTime) > Date.now());
}

function versionMetadata(entry: KvEntry, number: number, version: KvVersionRecord): Record<string, unknown> {
  return {
    created_time: version.createdTime,
    custom_metadata: entry.customMetadata,
    deletion_time: version.deletionTime,
    destroyed: version.destroyed,
    version: number,
  };
}

function readVersion(entry: KvEntry | undefined, versionParameter: string | null): Reply {
  if (entry === undefined) return notFound();
  const requested = versionParameter === null ? 0 : Number(versionParameter);
  if (!Number.isInteger(requested) || requested < 0) return errorReply(400, 'invalid version');
  const number = requested > 0 ? requested : entry.currentVersion;
  const version = entry.versions.get(number);
  if (version === undefined) return notFound();

  // A deleted or destroyed version is a 404 that still carries its metadata, as Vault returns it.
  if (!isReadable(version)) return { status: 404, body: envelope({ data: null, metadata: versionMetadata(entry, number, version) }) };
  return ok({ data: version.data, metadata: versionMetadata(entry, number, version) });
}

function describeKvEntry(entry: KvEntry): Record<string, unknown> {
  const versions: Record<string, unknown> = {};
  for (const [number, version] of entry.versions) {
    versions[String(number)] = { created_time: version.createdTime, deletion_time: version.deletionTime, destroyed: version.destroyed };
  }
  return {
    cas_required: entry.casRequired,
    created_time: entry.createdTime,
    current_version: entry.currentVersion,
    custom_metadata: entry.customMetadata,
    delete_version_after: entry.deleteVersionAfter,
    max_versions: entry.maxVersions,
    oldest_version: entry.oldestVersion,
    updated_time: entry.updatedTime,
    versions,
  };
}

function writeMetadata(entries: Map<string, KvEntry>, key: string, body: Record<string, unknown>): Reply {
  const { max_versions: maxVersions, cas_required: casRequired, custom_metadata: customMetadata, delete_version_after: deleteAfter } = body;
  if (maxVersions !== undefined && (typeof maxVersions !== 'number' || !Number.isInteger(maxVersions) || maxVersions < 0)) {
    return errorReply(400, 'max_versions must be a non-negative integer');
  }
  if (casRequired !== undefined && typeof casRequired !== 'boolean') return errorReply(400, 'cas_required must be a boolean');
  if (deleteAfter !== undefined && typeof deleteAfter !== 'string') return errorReply(400, 'delete_version_after must be a duration string');
  if (customMetadata !== undefined && customMetadata !== null) {
    const problem = customMetadataProblem(customMetadata);
    if (problem !== null) return errorReply(400, `custom_metadata validation failed: ${problem}`);
  }

  const entry = entries.get(key) ?? newKvEntry();
  entries.set(key, entry);
  if (typeof maxVersions === 'number') entry.maxVersions = maxVersions;
  if (typeof casRequired === 'boolean') entry.casRequired = casRequired;
  if (typeof deleteAfter === 'string') entry.deleteVersionAfter = deleteAfter;
  if (customMetadata !== undefined) entry.customMetadata = customMetadata === null ? null : { ...(customMetadata as Record<string, string>) };
  entry.updatedTime = new Date().toISOString();
  return { status: 204 };
}

function customMetadataProblem(value: unknown): string | null {
  if (!isRecord(value)) return 'expected a map of strings';
  const entries = Object.entries(value);
  if (entries.length > MAX_CUSTOM_METADATA_KEYS) return `more than ${MAX_CUSTOM_METADATA_KEYS} keys`;
  for (const [key, item] of entries) {
    if (typeof item !== 'string') return `value of key "${key}" is not a string`;
    if (key.length === 0 || key.length > MAX_CUSTOM_METADATA_KEY_LENGTH) return `length of key "${key}" is not between 1 and ${MAX_CUSTOM_METADATA_KEY_LENGTH}`;
    if (item.length > MAX_CUSTOM_METADATA_VALUE_LENGTH) return `length of value of key "${key}" exceeds ${MAX_CUSTOM_METADATA_VALUE_LENGTH}`;
  }
  return null;
}

function changeVersions(entry: KvEntry | undefined, operation: 'delete' | 'undelete' | 'destroy', versions: unknown): Reply {
  if (!Array.isArray(versions) || versions.length === 0) return errorReply(400, 'no version number provided');
  if (entry === undefined) return { status: 204 };
  for (const number of versions) {
    const version = entry.versions.get(Number(number));
    if (version === undefined || version.destroyed) continue;
    if (operation === 'delete' && version.deletionTime === '') version.deletionTime = new Date().toISOString();
    if (operation === 'undelete') version.deletionTime = '';
    if (operation === 'destroy') {
      version.destroyed = true;
      version.data = null;
    }
  }
  return { status: 204 };
}

function listKeys(entries: Map<string, KvEntry>, folder: string): Reply {
  const trimmed = folder.replace(/\/+$/, '');
  const prefix = trimmed === '' ? '' : `${trimmed}/`;
  const keys = new Set<string>();
  for (const key of entries.keys()) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf('/');
    keys.add(slash === -1 ? rest : rest.slice(0, slash + 1));
  }
  return keys.size === 0 ? notFound() : ok({ keys: [...keys].sort() });
}

// AppRole helpers.

function describeSecretId(entry: SecretIdRecord): Record<string, unknown> {
  return {
    cidr_list: [],
    creation_time: new Date(entry.createdAt).toISOString(),
    expiration_time: entry.expiresAt === null ? '0001-01-01T00:00:00Z' : new Date(entry.expiresAt).toISOString(),
    last_updated_time: new Date(entry.createdAt).toISOString(),
    metadata: entry.metadata,
    secret_id_accessor: entry.accessor,
    secret_id_num_uses: entry.numUses,
    secret_id_ttl: entry.ttl,
    token_bound_cidrs: [],
  };
}

/** Parses the `metadata` parameter of secret-id creation: a JSON object of strings, given as a string. */
function parseSecretIdMetadata(value: unknown): Record<string, string> | null {
  if (value === undefined || value === '') return {};
  if (typeof value !== 'string') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return null;
  }
  if (!isRecord(parsed) || !Object.values(parsed).every((item) => typeof item === 'string')) return null;
  return parsed as Record<string, string>;
}

// Generic helpers.

function envelope(data: unknown, warnings: string[] | null = null): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings,
    auth: null,
  };
}

function ok(data: unknown): Reply {
  return { status: 200, body: envelope(data) };
}

function notFound(): Reply {
  return { status: 404, body: { errors: [] } };
}

function errorReply(status: number, ...errors: string[]): Reply {
  return { status, body: { errors } };
}

/** Builds the 500 that Vault sends for a handler's internal error, in its multi-error format. */
function internalError(message: string): Reply {
  return errorReply(500, `1 error occurred:\n\t* ${message}\n\n`);
}

function defaultErrorText(status: number): string {
  switch (status) {
    case 412: return 'required index state not present';
    case 429: return 'request path "/v1/": rate limit quota exceeded';
    case 500: return 'internal error';
    case 502: return 'upstream request failed';
    case 503: return 'Vault is sealed';
    default: return `injected error ${status}`;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function requestToken(request: IncomingMessage): string | undefined {
  const token = headerValue(request, 'x-vault-token');
  if (token !== undefined && token !== '') return token;
  const authorization = headerValue(request, 'authorization');
  return authorization?.startsWith('Bearer ') ? authorization.slice('Bearer '.length) : undefined;
}

function normalizeNamespace(namespace: string): string {
  return namespace.replace(/^\/+|\/+$/g, '');
}

function namespaceContains(tokenNamespace: string, requestNamespace: string): boolean {
  return tokenNamespace === '' || requestNamespace === tokenNamespace || requestNamespace.startsWith(`${tokenNamespace}/`);
}

function rulePathMatches(rule: string, path: string): boolean {
  const pattern = rule
    .split('')
    .map((character, index) => {
      if (character === '*' && index === rule.length - 1) return '.*';
      if (character === '+') return '[^/]+';
      return character.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${pattern}$`).test(path);
}

function matchesPath(path: string, expected: string | RegExp, prefix = false): boolean {
  if (expected instanceof RegExp) return expected.test(path);
  return prefix ? path.startsWith(expected) : path === expected;
}

/** Parses a duration such as 90, "90", "90s", "15m" or "2h" into seconds, or returns null when it is absent or invalid. */
function parseDurationSeconds(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return Math.floor(value);
  if (typeof value !== 'string') return null;
  const match = /^(\d+)(s|m|h)?$/.exec(value.trim());
  if (match === null) return null;
  const amount = Number(match[1]);
  let unit = 1;
  if (match[2] === 'h') unit = 3600;
  if (match[2] === 'm') unit = 60;
  return amount > 0 ? amount * unit : null;
}
