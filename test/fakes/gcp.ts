import { generateKeyPairSync, randomBytes, verify as verifySignature, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the Google Cloud APIs that rekey calls, for tests, listening on 127.0.0.1 on a
 * free port. It is written from Google's public references and serves, on one port:
 *
 * - the OAuth 2.0 token endpoint (`POST /token`) with the JWT-bearer grant. It checks the RS256
 *   signature against the public key it keeps for the JWT's `kid` (or, without `kid`, each key of
 *   the issuing account), and it checks the audience and the lifetime. Deleted, disabled and
 *   not-yet-propagated keys get Google's `{"error":"invalid_grant",...}` body.
 * - `tokeninfo` (`GET` or `POST /tokeninfo`) for the access tokens it issued.
 * - IAM v1 service-account keys: list (with `keyTypes`), create, get, disable, enable and delete.
 *   Every account also has one SYSTEM_MANAGED key, as on Google Cloud. A create past 10
 *   user-managed keys gets 400 "Precondition check failed.", and an organisation-policy switch makes
 *   every create fail with the `iam.disableServiceAccountKeyCreation` precondition failure.
 * - IAM Credentials `generateAccessToken`, for callers granted the Token Creator role on the target.
 * - Secret Manager v1 REST: secrets (create, get, patch, delete) and versions (add, list, get,
 *   access, enable, disable, destroy) with the `latest` alias, which resolves to the newest version
 *   whatever its state, as on Google Cloud.
 *
 * It serves plain HTTP, or HTTPS with a test certificate. Errors are Google's JSON `{"error":{"code","message","status"}}`. API calls need a bearer token
 * that this server issued and that has not expired. Tests can set the propagation delay of new keys,
 * inject error responses and read back the requests the server received.
 */

/** Google's canonical token endpoint, which the fake also accepts as a JWT's audience. */
const GOOGLE_TOKEN_AUDIENCE = 'https://oauth2.googleapis.com/token';
const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** User-managed keys per service account (IAM quotas: service account keys, 10). */
export const FAKE_MAX_KEYS_PER_ACCOUNT = 10;
/** Lifetime of the access tokens that the token endpoint issues, in seconds. */
const ISSUED_TOKEN_SECONDS = 3599;
/** The project number that resource names carry, as Google returns names with numbers. */
const PROJECT_NUMBER = '123456789012';
const ORG_POLICY_CONSTRAINT = 'constraints/iam.disableServiceAccountKeyCreation';

export interface FakeGcpOptions {
  /** Milliseconds after creation during which the token endpoint rejects a new key. Default 0. */
  propagationDelayMs?: number;
  /** Serves HTTPS with this PEM key and certificate instead of plain HTTP. */
  tls?: { key: string; cert: string };
}

interface FakeKey {
  keyId: string;
  email: string;
  publicKey: KeyObject;
  type: 'USER_MANAGED' | 'SYSTEM_MANAGED';
  createdAt: number;
  disabled: boolean;
}

interface FakeAccount {
  email: string;
  projectId: string;
  uniqueId: string;
}

interface IssuedToken {
  email: string;
  scope: string;
  expiresAt: number;
}

interface FakeSecretVersion {
  number: number;
  state: 'ENABLED' | 'DISABLED' | 'DESTROYED';
  createdAt: number;
  data: Buffer | null;
}

interface FakeSecret {
  projectId: string;
  secretId: string;
  createdAt: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  etag: number;
  versions: FakeSecretVersion[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** The email of the token's account, or null for an unauthenticated request. */
  caller: string | null;
}

/** An error response that the next matching requests receive instead of the normal one. */
export interface InjectedFault {
  method: string;
  /** Matches the request path (without the query). */
  path: RegExp;
  status: number;
  body: unknown;
  /** How many matching requests get the fault. */
  times: number;
  /** How many matching requests pass normally before the fault applies. Default 0. */
  skip?: number;
}

const ENUM_NUMBERS: Record<FakeSecretVersion['state'], number> = { ENABLED: 1, DISABLED: 2, DESTROYED: 3 };

class HttpError extends Error {
  constructor(readonly status: number, readonly body: unknown) {
    super(`HTTP ${status}`);
  }
}

function googleError(code: number, status: string, message: string, details?: unknown[]): HttpError {
  return new HttpError(code, { error: details === undefined ? { code, message, status } : { code, message, status, details } });
}

function invalidGrant(description: string): HttpError {
  return new HttpError(400, { error: 'invalid_grant', error_description: description });
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function decodeSegment(segment: string | undefined): Record<string, unknown> | null {
  if (segment === undefined) return null;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export class FakeGcp {
  readonly server: Server;
  url = '';
  /** Milliseconds after creation during which the token endpoint rejects a new key. */
  propagationDelayMs: number;
  /** When true, every key creation fails as under the `iam.disableServiceAccountKeyCreation` organisation policy. */
  disableKeyCreation = false;
  readonly requests: RecordedRequest[] = [];
  readonly faults: InjectedFault[] = [];

  readonly #accounts = new Map<string, FakeAccount>();
  readonly #keys = new Map<string, FakeKey>();
  readonly #tokens = new Map<string, IssuedToken>();
  /** Token Creator grants: target email to the emails allowed to impersonate it. */
  readonly #tokenCreators = new Map<string, Set<string>>();
  readonly #secrets = new Map<string, FakeSecret>();

  private constructor(options: FakeGcpOptions) {
    this.propagationDelayMs = options.propagationDelayMs ?? 0;
    const handler = (request: IncomingMessage, response: ServerResponse): void => {
      void this.#handle(request, response);
    };
    this.server = options.tls === undefined ? createServer(handler) : createTlsServer(options.tls, handler);
  }

  static async start(options: FakeGcpOptions = {}): Promise<FakeGcp> {
    const fake = new FakeGcp(options);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', () => resolve()));
    const scheme = options.tls === undefined ? 'http' : 'https';
    fake.url = `${scheme}://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  get tokenUrl(): string {
    return `${this.url}/token`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** Creates a service account with its one system-managed key. */
  createServiceAccount(email: string): void {
    const projectId = email.split('@')[1]?.split('.')[0] ?? 'project';
    this.#accounts.set(email, { email, projectId, uniqueId: String(100_000_000_000_000_000_000n + BigInt(this.#accounts.size)) });
    this.#newKey(email, 'SYSTEM_MANAGED');
  }

  /** Lets `caller` mint access tokens for `target`, as the Token Creator role does. */
  grantTokenCreator(target: string, caller: string): void {
    const callers = this.#tokenCreators.get(target) ?? new Set<string>();
    callers.add(caller);
    this.#tokenCreators.set(target, callers);
  }

  /**
   * Creates a user-managed key outside the API and returns its key file JSON, whose `token_uri`
   * is this server. `ageMs` backdates the key, so that it is past any propagation delay.
   */
  addKey(email: string, ageMs = 60 * 60_000): string {
    const created = this.#newKey(email, 'USER_MANAGED', Date.now() - ageMs);
    return JSON.stringify(this.#keyFile(created.key, created.privateKeyPem));
  }

  /** Returns the state of each key of `type` that an account has and that is not deleted, by key id. */
  keyStates(email: string, type: FakeKey['type'] = 'USER_MANAGED'): Record<string, 'ENABLED' | 'DISABLED'> {
    const states: Record<string, 'ENABLED' | 'DISABLED'> = {};
    for (const key of this.#keys.values()) {
      if (key.email === email && key.type === type) states[key.keyId] = key.disabled ? 'DISABLED' : 'ENABLED';
    }
    return states;
  }

  /** Creates a secret with `values` as its versions, oldest first. */
  createSecret(projectId: string, secretId: string, values: string[] = []): void {
    const secret: FakeSecret = { projectId, secretId, createdAt: Date.now(), labels: {}, annotations: {}, etag: 1, versions: [] };
    for (const value of values) secret.versions.push({ number: secret.versions.length + 1, state: 'ENABLED', createdAt: Date.now(), data: Buffer.from(value) });
    this.#secrets.set(`${projectId}/${secretId}`, secret);
  }

  hasSecret(projectId: string, secretId: string): boolean {
    return this.#secrets.has(`${projectId}/${secretId}`);
  }

  /** Returns the versions of a secret, oldest first, with their state and value. */
  secretVersions(projectId: string, secretId: string): Array<{ number: number; state: string; value: string | null }> {
    const secret = this.#secrets.get(`${projectId}/${secretId}`);
    return (secret?.versions ?? []).map((version) => ({ number: version.number, state: version.state, value: version.data?.toString('utf8') ?? null }));
  }

  secretAnnotations(projectId: string, secretId: string): Record<string, string> {
    return { ...(this.#secrets.get(`${projectId}/${secretId}`)?.annotations ?? {}) };
  }

  /** Issues an access token for `email` outside the API, as the token endpoint would. */
  issueToken(email: string, scope = 'https://www.googleapis.com/auth/cloud-platform'): string {
    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    this.#tokens.set(token, { email, scope, expiresAt: Date.now() + ISSUED_TOKEN_SECONDS * 1000 });
    return token;
  }

  /** Makes the next `times` requests that match `method` and `path` fail with `status` and `body`. */
  injectFault(fault: InjectedFault): void {
    this.faults.push({ ...fault });
  }

  #newKey(email: string, type: FakeKey['type'], createdAt = Date.now()): { key: FakeKey; privateKeyPem: string } {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const key: FakeKey = { keyId: randomBytes(20).toString('hex'), email, publicKey: pair.publicKey, type, createdAt, disabled: false };
    this.#keys.set(key.keyId, key);
    return { key, privateKeyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  }

  #keyFile(key: FakeKey, privateKeyPem: string): Record<string, string> {
    const account = this.#accounts.get(key.email)!;
    return {
      type: 'service_account',
      project_id: account.projectId,
      private_key_id: key.keyId,
      private_key: privateKeyPem,
      client_email: key.email,
      client_id: account.uniqueId,
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: this.tokenUrl,
      auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
      client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(key.email)}`,
      universe_domain: 'googleapis.com',
    };
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.url);
    const method = request.method ?? 'GET';
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');

    const caller = this.#callerOf(request);
    try {
      this.requests.push({ method, path: url.pathname, caller });
      const fault = this.faults.find((candidate) => candidate.method === method && candidate.path.test(url.pathname) && candidate.times > 0);
      if (fault !== undefined && (fault.skip ?? 0) > 0) {
        fault.skip = (fault.skip ?? 0) - 1;
      } else if (fault !== undefined) {
        fault.times -= 1;
        throw new HttpError(fault.status, fault.body);
      }
      const result = this.#route(method, url, body, request.headers['content-type'] ?? '', caller);
      this.#send(response, 200, result);
    } catch (error) {
      if (error instanceof HttpError) this.#send(response, error.status, error.body);
      else this.#send(response, 500, { error: { code: 500, message: String(error), status: 'INTERNAL' } });
    }
  }

  #send(response: ServerResponse, status: number, body: unknown): void {
    response.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    response.end(JSON.stringify(body));
  }

  #callerOf(request: IncomingMessage): string | null {
    const header = request.headers.authorization;
    if (header === undefined || !header.startsWith('Bearer ')) return null;
    const token = this.#tokens.get(header.slice('Bearer '.length));
    return token !== undefined && token.expiresAt > Date.now() ? token.email : null;
  }

  #route(method: string, url: URL, body: string, contentType: string, caller: string | null): unknown {
    const path = url.pathname;
    if (path === '/token' && method === 'POST') return this.#token(new URLSearchParams(body));
    if (path === '/tokeninfo') {
      const params = method === 'POST' ? new URLSearchParams(body) : url.searchParams;
      return this.#tokenInfo(params.get('access_token'));
    }
    if (!path.startsWith('/v1/')) throw googleError(404, 'NOT_FOUND', `The requested URL ${path} was not found on this server.`);
    if (caller === null) {
      throw googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.');
    }

    const json = body === '' ? {} : (JSON.parse(body) as Record<string, unknown>);
    if (contentType !== '' && !contentType.includes('json') && body !== '') throw googleError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
    const segments = path.slice('/v1/'.length);
    const numericEnums = (url.searchParams.get('$alt') ?? '').includes('enum-encoding=int');

    const generate = /^projects\/([^/]+)\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(segments);
    if (generate !== null && method === 'POST') return this.#generateAccessToken(generate[1]!, decodeURIComponent(generate[2]!), json, caller);

    const keys = /^projects\/([^/]+)\/serviceAccounts\/([^/]+)\/keys(?:\/([^/:]+))?(?::(disable|enable))?$/.exec(segments);
    if (keys !== null) return this.#keysApi(method, decodeURIComponent(keys[2]!), keys[3], keys[4], url.searchParams, json);

    const secrets = /^projects\/([^/]+)\/secrets(?:\/([^/:]+))?(?::(addVersion))?(?:\/versions(?:\/([^/:]+))?(?::(access|enable|disable|destroy))?)?$/.exec(segments);
    if (secrets !== null) {
      return this.#secretsApi(method, {
        projectId: secrets[1]!, secretId: secrets[2], addVersion: secrets[3] !== undefined,
        versions: segments.includes('/versions'), version: secrets[4], action: secrets[5],
      }, url.searchParams, json, numericEnums);
    }
    throw googleError(404, 'NOT_FOUND', `The requested URL ${path} was not found on this server.`);
  }

  // --- OAuth 2.0 ---

  #token(form: URLSearchParams): unknown {
    const grantType = form.get('grant_type');
    if (grantType !== JWT_BEARER_GRANT_TYPE) {
      throw new HttpError(400, { error: 'unsupported_grant_type', error_description: `Invalid grant_type: ${grantType ?? ''}` });
    }
    const assertion = form.get('assertion') ?? '';
    const [headerPart, payloadPart, signaturePart] = assertion.split('.');
    const header = decodeSegment(headerPart);
    const claims = decodeSegment(payloadPart);
    if (header === null || claims === null || signaturePart === undefined || header.alg !== 'RS256') {
      throw invalidGrant('Invalid JWT: Token must be a short-lived token and in a reasonable timeframe');
    }

    const email = typeof claims.iss === 'string' ? claims.iss : '';
    if (!this.#accounts.has(email)) throw invalidGrant('Invalid grant: account not found');
    if (claims.aud !== this.tokenUrl && claims.aud !== GOOGLE_TOKEN_AUDIENCE) {
      throw invalidGrant(`Invalid JWT: Failed audience check. The right audience is ${GOOGLE_TOKEN_AUDIENCE}`);
    }
    const now = Math.floor(Date.now() / 1000);
    const iat = Number(claims.iat);
    const exp = Number(claims.exp);
    if (!Number.isFinite(iat) || !Number.isFinite(exp) || exp <= now || iat > now + 60 || exp - iat > 3600) {
      throw invalidGrant('Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
    }

    // A key that is deleted, disabled or still propagating is not among the account's usable
    // keys, so its signature does not verify. Google responds the same way for all three.
    const candidates = [...this.#keys.values()].filter((key) => key.email === email && (header.kid === undefined || key.keyId === header.kid));
    const signed = Buffer.from(`${headerPart}.${payloadPart}`);
    const signature = Buffer.from(signaturePart, 'base64url');
    const usable = candidates.filter((key) => !key.disabled && Date.now() - key.createdAt >= this.propagationDelayMs);
    if (!usable.some((key) => verifySignature('RSA-SHA256', signed, key.publicKey, signature))) {
      throw invalidGrant('Invalid JWT Signature.');
    }

    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    this.#tokens.set(token, { email, scope: typeof claims.scope === 'string' ? claims.scope : '', expiresAt: Date.now() + ISSUED_TOKEN_SECONDS * 1000 });
    return { access_token: token, expires_in: ISSUED_TOKEN_SECONDS, token_type: 'Bearer' };
  }

  #tokenInfo(accessToken: string | null): unknown {
    const token = accessToken === null ? undefined : this.#tokens.get(accessToken);
    if (token === undefined || token.expiresAt <= Date.now()) throw new HttpError(400, { error: 'invalid_token', error_description: 'Invalid Value' });
    const account = this.#accounts.get(token.email);
    const expiresIn = Math.floor((token.expiresAt - Date.now()) / 1000);
    const info: Record<string, string> = {
      azp: account?.uniqueId ?? '', aud: account?.uniqueId ?? '', scope: token.scope,
      exp: String(Math.floor(token.expiresAt / 1000)), expires_in: String(expiresIn), access_type: 'online',
    };
    if (token.scope.split(' ').includes('https://www.googleapis.com/auth/userinfo.email')) {
      info.email = token.email;
      info.email_verified = 'true';
    }
    return info;
  }

  // --- IAM Credentials ---

  #generateAccessToken(project: string, email: string, body: Record<string, unknown>, caller: string): unknown {
    const denied = googleError(403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).");
    if (!this.#accounts.has(email) || !(this.#tokenCreators.get(email)?.has(caller) ?? false)) throw denied;
    if (project !== '-') throw googleError(400, 'INVALID_ARGUMENT', 'The project ID must be the wildcard character "-".');

    const scope = Array.isArray(body.scope) ? body.scope.filter((item): item is string => typeof item === 'string') : [];
    if (scope.length === 0) throw googleError(400, 'INVALID_ARGUMENT', 'Scope required.');
    const lifetimeText = typeof body.lifetime === 'string' ? body.lifetime : '3600s';
    const lifetime = Number(lifetimeText.replace(/s$/, ''));
    if (!Number.isFinite(lifetime) || lifetime <= 0 || lifetime > 3600) {
      throw googleError(400, 'INVALID_ARGUMENT', `The lifetime must be between 1 and 3600 seconds, or up to 43200 seconds with the ${'constraints/iam.allowServiceAccountCredentialLifetimeExtension'} policy.`);
    }

    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    const expiresAt = Date.now() + lifetime * 1000;
    this.#tokens.set(token, { email, scope: scope.join(' '), expiresAt });
    return { accessToken: token, expireTime: rfc3339(expiresAt) };
  }

  // --- IAM v1 keys ---

  #keysApi(method: string, email: string, keyId: string | undefined, action: string | undefined, query: URLSearchParams, body: Record<string, unknown>): unknown {
    const account = this.#accounts.get(email);
    if (account === undefined) throw googleError(404, 'NOT_FOUND', `Service account projects/-/serviceAccounts/${email} does not exist.`);

    if (keyId === undefined) {
      if (method === 'GET') {
        const types = query.getAll('keyTypes');
        const keys = [...this.#keys.values()].filter((key) => key.email === email && (types.length === 0 || types.includes(key.type)));
        return { keys: keys.map((key) => this.#keyResource(account, key)) };
      }
      if (method === 'POST') return this.#createKey(account, body);
      throw googleError(405, 'INVALID_ARGUMENT', `Method ${method} is not allowed on keys.`);
    }

    const key = this.#keys.get(keyId);
    if (key === undefined || key.email !== email) {
      throw googleError(404, 'NOT_FOUND', `Service account key projects/${account.projectId}/serviceAccounts/${email}/keys/${keyId} does not exist.`);
    }
    if (method === 'GET' && action === undefined) return this.#keyResource(account, key);
    if (method === 'DELETE' && action === undefined) {
      this.#keys.delete(keyId);
      return {};
    }
    if (method === 'POST' && action !== undefined) {
      if (key.type === 'SYSTEM_MANAGED') throw googleError(400, 'FAILED_PRECONDITION', 'System-managed keys cannot be disabled or enabled.');
      key.disabled = action === 'disable';
      return {};
    }
    throw googleError(405, 'INVALID_ARGUMENT', `Method ${method} is not allowed on a key.`);
  }

  #createKey(account: FakeAccount, body: Record<string, unknown>): unknown {
    if (this.disableKeyCreation) {
      throw googleError(400, 'FAILED_PRECONDITION', 'Key creation is not allowed on this service account.', [{
        '@type': 'type.googleapis.com/google.rpc.PreconditionFailure',
        violations: [{ type: ORG_POLICY_CONSTRAINT, subject: `projects/${account.projectId}?configvalue=${account.email}`, description: 'Key creation is not allowed on this service account.' }],
      }]);
    }
    const userManaged = [...this.#keys.values()].filter((key) => key.email === account.email && key.type === 'USER_MANAGED');
    if (userManaged.length >= FAKE_MAX_KEYS_PER_ACCOUNT) throw googleError(400, 'FAILED_PRECONDITION', 'Precondition check failed.');
    const keyType = body.privateKeyType ?? 'TYPE_GOOGLE_CREDENTIALS_FILE';
    if (keyType !== 'TYPE_GOOGLE_CREDENTIALS_FILE') throw googleError(400, 'INVALID_ARGUMENT', `Unsupported private key type ${String(keyType)}.`);

    const created = this.#newKey(account.email, 'USER_MANAGED');
    const keyFile = JSON.stringify(this.#keyFile(created.key, created.privateKeyPem), null, 2);
    return {
      ...this.#keyResource(account, created.key),
      privateKeyType: 'TYPE_GOOGLE_CREDENTIALS_FILE',
      privateKeyData: Buffer.from(keyFile).toString('base64'),
    };
  }

  #keyResource(account: FakeAccount, key: FakeKey): Record<string, unknown> {
    const resource: Record<string, unknown> = {
      name: `projects/${account.projectId}/serviceAccounts/${account.email}/keys/${key.keyId}`,
      validAfterTime: rfc3339(key.createdAt),
      validBeforeTime: key.type === 'USER_MANAGED' ? '9999-12-31T23:59:59Z' : rfc3339(key.createdAt + 14 * 86_400_000),
      keyAlgorithm: 'KEY_ALG_RSA_2048',
      keyOrigin: 'GOOGLE_PROVIDED',
      keyType: key.type,
    };
    if (key.disabled) resource.disabled = true;
    return resource;
  }

  // --- Secret Manager ---

  #secretsApi(
    method: string,
    target: { projectId: string; secretId: string | undefined; addVersion: boolean; versions: boolean; version: string | undefined; action: string | undefined },
    query: URLSearchParams,
    body: Record<string, unknown>,
    numericEnums: boolean,
  ): unknown {
    const { projectId } = target;
    if (target.secretId === undefined) {
      if (method !== 'POST') throw googleError(400, 'INVALID_ARGUMENT', 'Listing secrets is not supported by this fake.');
      return this.#createSecretResource(projectId, query.get('secretId'), body);
    }

    const secret = this.#secrets.get(`${projectId}/${target.secretId}`);
    if (secret === undefined) throw googleError(404, 'NOT_FOUND', `Secret [projects/${PROJECT_NUMBER}/secrets/${target.secretId}] not found or has no versions.`);

    if (target.addVersion && method === 'POST') {
      const payload = body.payload as { data?: unknown } | undefined;
      if (typeof payload?.data !== 'string') throw googleError(400, 'INVALID_ARGUMENT', 'Payload data is required.');
      const version: FakeSecretVersion = { number: secret.versions.length + 1, state: 'ENABLED', createdAt: Date.now(), data: Buffer.from(payload.data, 'base64') };
      secret.versions.push(version);
      return this.#versionResource(secret, version, numericEnums);
    }

    if (!target.versions) {
      if (method === 'GET') return this.#secretResource(secret);
      if (method === 'DELETE') {
        this.#secrets.delete(`${projectId}/${target.secretId}`);
        return {};
      }
      if (method === 'PATCH') return this.#patchSecret(secret, query, body);
      throw googleError(400, 'INVALID_ARGUMENT', `Method ${method} is not allowed on a secret.`);
    }

    if (target.version === undefined) {
      const versions = [...secret.versions].reverse().map((version) => this.#versionResource(secret, version, numericEnums));
      return versions.length === 0 ? {} : { versions, totalSize: versions.length };
    }

    const version = target.version === 'latest' ? secret.versions.at(-1) : secret.versions.find((candidate) => String(candidate.number) === target.version);
    const versionName = `projects/${PROJECT_NUMBER}/secrets/${secret.secretId}/versions/${version?.number ?? target.version}`;
    if (version === undefined) throw googleError(404, 'NOT_FOUND', `Secret Version [${versionName}] not found.`);

    switch (target.action) {
      case undefined:
        return this.#versionResource(secret, version, numericEnums);
      case 'access':
        if (version.state !== 'ENABLED') throw googleError(400, 'FAILED_PRECONDITION', `Secret Version [${versionName}] is in ${version.state} state.`);
        return { name: versionName, payload: { data: version.data!.toString('base64') } };
      case 'enable':
      case 'disable':
        if (version.state === 'DESTROYED') throw googleError(400, 'FAILED_PRECONDITION', `Secret Version [${versionName}] is in DESTROYED state.`);
        version.state = target.action === 'enable' ? 'ENABLED' : 'DISABLED';
        return this.#versionResource(secret, version, numericEnums);
      default:
        if (version.state === 'DESTROYED') throw googleError(400, 'FAILED_PRECONDITION', `Secret Version [${versionName}] is in DESTROYED state.`);
        version.state = 'DESTROYED';
        version.data = null;
        return this.#versionResource(secret, version, numericEnums);
    }
  }

  #createSecretResource(projectId: string, secretId: string | null, body: Record<string, unknown>): unknown {
    if (secretId === null || !/^[\w-]{1,255}$/.test(secretId)) throw googleError(400, 'INVALID_ARGUMENT', 'Secret ID must be 1 to 255 letters, digits, underscores or hyphens.');
    if (this.#secrets.has(`${projectId}/${secretId}`)) throw googleError(409, 'ALREADY_EXISTS', `Secret [projects/${PROJECT_NUMBER}/secrets/${secretId}] already exists.`);
    if (typeof body.replication !== 'object' || body.replication === null) throw googleError(400, 'INVALID_ARGUMENT', 'Replication is required.');
    const secret: FakeSecret = {
      projectId, secretId, createdAt: Date.now(), labels: { ...(body.labels as Record<string, string> | undefined) },
      annotations: { ...(body.annotations as Record<string, string> | undefined) }, etag: 1, versions: [],
    };
    this.#secrets.set(`${projectId}/${secretId}`, secret);
    return this.#secretResource(secret);
  }

  #patchSecret(secret: FakeSecret, query: URLSearchParams, body: Record<string, unknown>): unknown {
    const mask = (query.get('updateMask') ?? '').split(',').filter((field) => field !== '');
    if (mask.length === 0) throw googleError(400, 'INVALID_ARGUMENT', 'update_mask is required.');
    for (const field of mask) {
      if (field === 'annotations') secret.annotations = { ...(body.annotations as Record<string, string> | undefined) };
      else if (field === 'labels') secret.labels = { ...(body.labels as Record<string, string> | undefined) };
      else throw googleError(400, 'INVALID_ARGUMENT', `Updating field ${field} is not supported by this fake.`);
    }
    secret.etag += 1;
    return this.#secretResource(secret);
  }

  #secretResource(secret: FakeSecret): unknown {
    return {
      name: `projects/${PROJECT_NUMBER}/secrets/${secret.secretId}`,
      replication: { automatic: {} },
      createTime: rfc3339(secret.createdAt),
      labels: secret.labels,
      annotations: secret.annotations,
      etag: `"${secret.etag}"`,
    };
  }

  #versionResource(secret: FakeSecret, version: FakeSecretVersion, numericEnums: boolean): unknown {
    return {
      name: `projects/${PROJECT_NUMBER}/secrets/${secret.secretId}/versions/${version.number}`,
      createTime: rfc3339(version.createdAt),
      state: numericEnums ? ENUM_NUMBERS[version.state] : version.state,
      replicationStatus: { automatic: {} },
      etag: `"${version.number}-${version.state}"`,
    };
  }
}
