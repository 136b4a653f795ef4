import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the three Azure services rekey calls, on one HTTPS server at 127.0.0.1 on a free
 * port, written from Microsoft's public API references:
 *
 * - Microsoft Entra ID's OAuth 2.0 v2.0 endpoints as `@azure/identity` (MSAL) calls them:
 *   `GET /{tenant}/v2.0/.well-known/openid-configuration` and `POST /{tenant}/oauth2/v2.0/token`
 *   with `grant_type=client_credentials` and a `client_secret` or a federated `client_assertion`. Errors are OAuth bodies with
 *   `error`, `error_description` (starting with the AADSTS code) and `error_codes`.
 * - Microsoft Graph v1.0: `GET /v1.0/applications/{id}` and `/v1.0/applications(appId='{appId}')`,
 *   with `addPassword` and `removePassword` under both. Errors are `{"error":{"code","message","innerError"}}`.
 * - Azure Key Vault secrets: `PUT /secrets/{name}`, `GET /secrets/{name}[/{version}]`,
 *   `PATCH /secrets/{name}/{version}` and `GET /secrets/{name}/versions`, each requiring the
 *   `api-version` query parameter. A request without a bearer token gets 401 with the
 *   `WWW-Authenticate: Bearer authorization="…", resource="…"` challenge.
 *
 * Access tokens are opaque random strings bound to a client and an audience: Graph accepts only
 * tokens for https://graph.microsoft.com, Key Vault only for https://vault.azure.net. Graph lets a
 * client change only the applications it owns (Application.ReadWrite.OwnedBy). Key Vault lets
 * only the clients in `vaultClients` in (a role assignment such as Key Vault Secrets Officer).
 *
 * Tests control a propagation delay, during which the token endpoint rejects a new secret with
 * AADSTS7000215, and a limit on secrets per application. They can also request 429 responses with
 * Retry-After and an addPassword that creates the secret and then returns 503, and they can read
 * a log of every request.
 */

export const GRAPH_AUDIENCE = 'https://graph.microsoft.com';
export const KEY_VAULT_AUDIENCE = 'https://vault.azure.net';

/** The metadata of a client secret, as Graph lists it (secretText is always null there). */
export interface FakePasswordCredential {
  keyId: string;
  displayName: string | null;
  customKeyIdentifier: string | null;
  hint: string;
  startDateTime: string;
  endDateTime: string;
}

interface StoredPassword extends FakePasswordCredential {
  secretText: string;
  /** When the token endpoint starts accepting the secret, in milliseconds since the epoch. */
  usableFromMs: number;
}

interface Application {
  id: string;
  appId: string;
  displayName: string;
  signInAudience: string;
  /** Client ids of the applications (service principals) that own this one. */
  owners: Set<string>;
  passwords: StoredPassword[];
}

interface IssuedToken {
  clientId: string;
  audience: string;
  expiresAtMs: number;
}

interface SecretVersion {
  version: string;
  value: string;
  contentType: string | null;
  tags: Record<string, string>;
  enabled: boolean;
  createdSeconds: number;
  updatedSeconds: number;
}

/** One request the fake received. `route` names the operation, such as `addPassword` or `token`. */
export interface FakeAzureRequest {
  method: string;
  path: string;
  route: string;
  status: number;
  /** For addPassword: whether the request created a secret. */
  created?: boolean;
}

export type ThrottledRoute = 'getApplication' | 'addPassword' | 'removePassword';

export interface FakeAzureOptions {
  /** Milliseconds during which the token endpoint rejects a secret made by addPassword. Default 0. */
  propagationDelayMs?: number;
  /** Secrets one application may hold; addPassword beyond it returns 400 TooManyAppPasswords. Default none. */
  secretLimit?: number | null;
  /** Lifetime of issued access tokens, in seconds. Default 3599, as Entra ID issues them. */
  tokenLifetimeSeconds?: number;
  tls: { key: string; cert: string };
}

/** Characters of a generated client secret (Entra ID secrets use letters, digits and `~._-`). */
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-';

function generateSecretText(): string {
  const bytes = randomBytes(37);
  const chars = [...bytes].map((byte) => SECRET_ALPHABET[byte % SECRET_ALPHABET.length]);
  // Entra ID secrets are 40 characters with `8Q~` after the three-character hint; the fake copies the form.
  return `${chars.slice(0, 3).join('')}8Q~${chars.slice(3).join('')}`;
}

function secretVersionId(): string {
  return randomBytes(16).toString('hex');
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

class HttpError extends Error {
  constructor(readonly status: number, readonly body: unknown, readonly headers: Record<string, string> = {}) {
    super(`HTTP ${status}`);
  }
}

export class FakeAzure {
  readonly tenantId: string = randomUUID();
  /** rekey's own identity: a client that owns the applications created with `createApplication`. */
  readonly admin: { clientId: string; secret: string };
  /** Client ids that Key Vault lets read and write secrets. */
  readonly vaultClients = new Set<string>();
  readonly requests: FakeAzureRequest[] = [];
  propagationDelayMs: number;
  secretLimit: number | null;

  readonly #server: Server;
  readonly #tokenLifetimeSeconds: number;
  readonly #applications = new Map<string, Application>();
  readonly #tokens = new Map<string, IssuedToken>();
  readonly #secrets = new Map<string, SecretVersion[]>();
  readonly #throttles = new Map<ThrottledRoute, Array<{ retryAfterSeconds: number }>>();
  /** Federated assertions (a Kubernetes service account token) that the token endpoint accepts, by client id. */
  readonly #federated = new Map<string, string>();
  #failAfterCreate = 0;
  #url = '';

  private constructor(server: Server, options: FakeAzureOptions) {
    this.#server = server;
    this.propagationDelayMs = options.propagationDelayMs ?? 0;
    this.secretLimit = options.secretLimit ?? null;
    this.#tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 3599;

    const admin = this.createApplication({ displayName: 'rekey', owned: false });
    this.admin = { clientId: admin.appId, secret: this.addSecret(admin.appId).secretText };
    this.vaultClients.add(admin.appId);
  }

  static async start(options: FakeAzureOptions): Promise<FakeAzure> {
    const server = createServer({ key: options.tls.key, cert: options.tls.cert });
    const fake = new FakeAzure(server, options);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      void fake.handle(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fake.#url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return fake;
  }

  /** The server's origin, such as https://127.0.0.1:40123: the authority host, Graph endpoint and vault URL at once. */
  get url(): string {
    return this.#url;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Registers an application. `owned` (default true) makes rekey's identity one of its owners. */
  createApplication(options: { displayName: string; signInAudience?: string; owned?: boolean }): { id: string; appId: string } {
    const application: Application = {
      id: randomUUID(),
      appId: randomUUID(),
      displayName: options.displayName,
      signInAudience: options.signInAudience ?? 'AzureADMyOrg',
      owners: new Set(options.owned === false ? [] : [this.admin.clientId]),
      passwords: [],
    };
    this.#applications.set(application.id, application);
    return { id: application.id, appId: application.appId };
  }

  /** Adds a secret directly, usable at once, as one made long ago or by hand in the portal. */
  addSecret(appId: string, displayName: string | null = null): { keyId: string; secretText: string } {
    const password = this.#newPassword({ displayName }, 0);
    this.#findByAppId(appId).passwords.push(password);
    return { keyId: password.keyId, secretText: password.secretText };
  }

  /**
   * Registers a federated identity credential for `clientId` and returns the assertion to present,
   * as the service account token the AKS webhook mounts. The fake compares it as an opaque string.
   */
  addFederatedAssertion(clientId: string): string {
    const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const assertion = [
      encode({ alg: 'RS256', typ: 'JWT' }),
      encode({ iss: 'https://oidc.example.test', sub: 'system:serviceaccount:rekey:rekey', aud: ['api://AzureADTokenExchange'], iat: now, exp: now + 3600 }),
      randomBytes(32).toString('base64url'),
    ].join('.');
    this.#federated.set(clientId, assertion);
    return assertion;
  }

  /** Lists the secrets of an application, without their values, oldest first. */
  passwordCredentials(appId: string): FakePasswordCredential[] {
    return this.#findByAppId(appId).passwords.map((password) => this.#publicPassword(password));
  }

  /** Makes the next `count` requests of `route` return 429 with `Retry-After: retryAfterSeconds`. */
  throttle(route: ThrottledRoute, count: number, retryAfterSeconds: number): void {
    const queue = this.#throttles.get(route) ?? [];
    for (let index = 0; index < count; index += 1) queue.push({ retryAfterSeconds });
    this.#throttles.set(route, queue);
  }

  /** Makes the next `count` addPassword requests create their secret and then return 503, as when the response is lost. */
  failAfterCreate(count: number): void {
    this.#failAfterCreate = count;
  }

  /** Writes a secret version directly, as another writer would; returns the version id. */
  writeSecret(name: string, value: string, tags: Record<string, string> = {}): string {
    return this.#setSecret(name, { value, tags, contentType: null, enabled: true }).version;
  }

  /** Disables a secret version directly, as an operator would in the portal. */
  disableSecretVersion(name: string, version: string): void {
    const found = this.#secrets.get(name)?.find((candidate) => candidate.version === version);
    if (found === undefined) throw new Error(`the fake has no version ${version} of secret ${name}`);
    found.enabled = false;
  }

  /** Reads the latest version's value of a secret, as consumers do, or returns undefined. */
  readSecret(name: string): string | undefined {
    return this.#secrets.get(name)?.at(-1)?.value;
  }

  /** Lists the versions of a secret, oldest first, with their values. */
  secretVersions(name: string): Array<{ version: string; value: string; enabled: boolean; tags: Record<string, string> }> {
    return (this.#secrets.get(name) ?? []).map(({ version, value, enabled, tags }) => ({ version, value, enabled, tags: { ...tags } }));
  }

  secretNames(): string[] {
    return [...this.#secrets.keys()];
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.#url);
    const entry: FakeAzureRequest = { method: request.method ?? 'GET', path: url.pathname, route: 'unknown', status: 0 };
    this.requests.push(entry);
    const body = await new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });

    let status: number;
    let payload: unknown;
    let headers: Record<string, string> = {};
    try {
      [status, payload] = this.#route(request, url, body, entry);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      status = error.status;
      payload = error.body;
      headers = error.headers;
    }

    entry.status = status;
    const text = payload === null ? '' : JSON.stringify(payload);
    response.writeHead(status, {
      ...headers,
      ...(text === '' ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      'content-length': Buffer.byteLength(text),
    });
    response.end(text);
  }

  #route(request: IncomingMessage, url: URL, body: string, entry: FakeAzureRequest): [number, unknown] {
    const method = request.method ?? 'GET';
    const path = decodeURIComponent(url.pathname);

    const openId = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
    if (openId !== null && method === 'GET') {
      entry.route = 'openid-configuration';
      return [200, this.#openIdConfiguration(openId[1]!)];
    }
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
    if (token !== null && method === 'POST') {
      entry.route = 'token';
      return [200, this.#token(token[1]!, new URLSearchParams(body))];
    }
    if (path.startsWith('/v1.0/applications')) return this.#graph(request, url, path, body, entry);
    if (path.startsWith('/secrets/')) return this.#keyVault(request, url, path, body, entry);
    entry.route = 'unknown';
    throw new HttpError(404, { error: { code: 'NotFound', message: `no route for ${method} ${path}` } });
  }

  // Entra ID

  #openIdConfiguration(tenant: string): unknown {
    this.#requireTenant(tenant);
    const base = `${this.#url}/${tenant}`;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${this.#url}/${tenant}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${this.#url}/${tenant}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${this.#url}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'tid'],
      tenant_region_scope: 'EU',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
    };
  }

  #token(tenant: string, form: URLSearchParams): unknown {
    this.#requireTenant(tenant);
    if (form.get('grant_type') !== 'client_credentials') {
      throw this.#oauthError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${form.get('grant_type') ?? ''}'.`);
    }
    const clientId = form.get('client_id') ?? '';
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    if (secret === null && assertion === null) {
      throw this.#oauthError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    const scope = form.get('scope') ?? '';
    if (!scope.endsWith('/.default')) {
      throw this.#oauthError(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    }
    if (secret !== null) {
      this.#authenticateClient(clientId, secret);
    } else if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' || this.#federated.get(clientId) !== assertion) {
      throw this.#oauthError(400, 'invalid_client', 70021, 'No matching federated identity record found for presented assertion.');
    }

    const accessToken = randomBytes(32).toString('base64url');
    this.#tokens.set(accessToken, { clientId, audience: scope.slice(0, -'/.default'.length), expiresAtMs: Date.now() + this.#tokenLifetimeSeconds * 1000 });
    return { token_type: 'Bearer', expires_in: this.#tokenLifetimeSeconds, ext_expires_in: this.#tokenLifetimeSeconds, access_token: accessToken };
  }

  #authenticateClient(clientId: string, secret: string): void {
    const application = [...this.#applications.values()].find((candidate) => candidate.appId === clientId);
    if (application === undefined) {
      throw this.#oauthError(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${this.tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`);
    }
    const password = application.passwords.find((candidate) => candidate.secretText === secret);
    const now = Date.now();
    if (password === undefined || now < password.usableFromMs) {
      throw this.#oauthError(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
    }
    if (now > Date.parse(password.endDateTime)) {
      throw this.#oauthError(401, 'invalid_client', 7000222, `The provided client secret keys for app '${clientId}' are expired.`);
    }
  }

  #requireTenant(tenant: string): void {
    if (tenant !== this.tenantId) {
      throw this.#oauthError(400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    }
  }

  #oauthError(status: number, error: string, code: number, description: string): HttpError {
    const traceId = randomUUID();
    const correlationId = randomUUID();
    const timestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    return new HttpError(status, {
      error,
      error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `${this.#url}/error?code=${code}`,
    });
  }

  #bearer(request: IncomingMessage, audience: string): IssuedToken | null {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer (\S+)$/i.exec(header);
    if (match === null) return null;
    const token = this.#tokens.get(match[1]!);
    if (token === undefined || token.expiresAtMs < Date.now() || token.audience !== audience) return null;
    return token;
  }

  // Microsoft Graph

  #graphError(status: number, code: string, message: string, headers: Record<string, string> = {}): HttpError {
    const innerError = { date: new Date().toISOString().replace(/\.\d+Z$/, ''), 'request-id': randomUUID(), 'client-request-id': randomUUID() };
    return new HttpError(status, { error: { code, message, innerError } }, headers);
  }

  #graph(request: IncomingMessage, url: URL, path: string, body: string, entry: FakeAzureRequest): [number, unknown] {
    const method = request.method ?? 'GET';
    const match = /^\/v1\.0\/applications(?:\/([0-9a-f-]+)|\(appId='([^']+)'\))(?:\/(addPassword|removePassword))?$/.exec(path);
    if (match === null) {
      entry.route = 'graph';
      throw this.#graphError(400, 'BadRequest', `Resource not found for the segment '${path.split('/').pop() ?? ''}'.`);
    }
    const action = match[3] as 'addPassword' | 'removePassword' | undefined;
    const route: ThrottledRoute = action ?? 'getApplication';
    entry.route = route;

    const caller = this.#bearer(request, GRAPH_AUDIENCE);
    if (caller === null) {
      throw this.#graphError(401, 'InvalidAuthenticationToken', 'Access token is empty, expired or issued for another audience.');
    }
    const throttled = this.#throttles.get(route)?.shift();
    if (throttled !== undefined) {
      throw this.#graphError(429, 'TooManyRequests', 'Too many requests. Please retry after the interval in the Retry-After header.', { 'retry-after': String(throttled.retryAfterSeconds) });
    }

    const application = match[1] !== undefined
      ? this.#applications.get(match[1])
      : [...this.#applications.values()].find((candidate) => candidate.appId === match[2]);
    if (application === undefined) {
      throw this.#graphError(404, 'Request_ResourceNotFound', `Resource '${match[1] ?? match[2] ?? ''}' does not exist or one of its queried reference-property objects are not present.`);
    }
    if (!application.owners.has(caller.clientId)) {
      throw this.#graphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
    }

    if (action === undefined && method === 'GET') return [200, this.#applicationView(application, url.searchParams.get('$select'))];
    if (action === 'addPassword' && method === 'POST') return this.#addPassword(application, body, entry);
    if (action === 'removePassword' && method === 'POST') return this.#removePassword(application, body);
    throw this.#graphError(405, 'Request_BadRequest', `Method ${method} is not allowed on this resource.`);
  }

  #applicationView(application: Application, select: string | null): Record<string, unknown> {
    const full: Record<string, unknown> = {
      id: application.id,
      appId: application.appId,
      displayName: application.displayName,
      signInAudience: application.signInAudience,
      passwordCredentials: application.passwords.map((password) => ({ ...this.#publicPassword(password), secretText: null })),
    };
    const fields = select === null ? Object.keys(full) : select.split(',').map((field) => field.trim());
    const view: Record<string, unknown> = { '@odata.context': `${this.#url}/v1.0/$metadata#applications/$entity` };
    for (const field of fields) if (field in full) view[field] = full[field];
    return view;
  }

  #addPassword(application: Application, body: string, entry: FakeAzureRequest): [number, unknown] {
    const parsed = this.#parseJson(body) as { passwordCredential?: { displayName?: unknown; startDateTime?: unknown; endDateTime?: unknown } };
    const requested = parsed.passwordCredential ?? {};
    if (this.secretLimit !== null && application.passwords.length >= this.secretLimit) {
      // The shape reported for applications that allow personal Microsoft accounts, which
      // Entra ID limits to two secrets: code TooManyAppPasswords and this message.
      throw this.#graphError(400, 'TooManyAppPasswords', `Not allowed to add ${application.passwords.length + 1} passwords. You can only add a maximum of ${this.secretLimit} passwords.`);
    }
    const startMs = typeof requested.startDateTime === 'string' ? Date.parse(requested.startDateTime) : Date.now();
    const endMs = typeof requested.endDateTime === 'string' ? Date.parse(requested.endDateTime) : startMs + 2 * 365 * 24 * 3600 * 1000;
    if (Number.isNaN(startMs) || Number.isNaN(endMs) || endMs <= startMs) {
      throw this.#graphError(400, 'Request_BadRequest', 'The endDateTime of a password credential must be later than its startDateTime.');
    }

    const password = this.#newPassword({ displayName: typeof requested.displayName === 'string' ? requested.displayName : null, startMs, endMs }, this.propagationDelayMs);
    application.passwords.push(password);
    entry.created = true;
    if (this.#failAfterCreate > 0) {
      this.#failAfterCreate -= 1;
      throw this.#graphError(503, 'serviceNotAvailable', 'The service is temporarily unavailable. Please retry later.');
    }
    return [200, { '@odata.context': `${this.#url}/v1.0/$metadata#microsoft.graph.passwordCredential`, ...this.#publicPassword(password), secretText: password.secretText }];
  }

  #removePassword(application: Application, body: string): [number, unknown] {
    const { keyId } = this.#parseJson(body) as { keyId?: unknown };
    if (typeof keyId !== 'string') throw this.#graphError(400, 'Request_BadRequest', "The request body must contain 'keyId'.");
    const index = application.passwords.findIndex((password) => password.keyId === keyId);
    if (index === -1) {
      // NOTE: Graph's reference does not document the response for an unknown keyId. The fake
      // returns 404, and rekey's client checks the list again for any 400 or 404.
      throw this.#graphError(404, 'Request_ResourceNotFound', `No password credential with keyId '${keyId}' exists on application '${application.id}'.`);
    }
    application.passwords.splice(index, 1);
    return [204, null];
  }

  #parseJson(body: string): Record<string, unknown> {
    if (body === '') return {};
    try {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // Rejected below with Graph's error body.
    }
    throw this.#graphError(400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
  }

  #newPassword(options: { displayName: string | null; startMs?: number; endMs?: number }, delayMs: number): StoredPassword {
    const secretText = generateSecretText();
    const startMs = options.startMs ?? Date.now();
    return {
      keyId: randomUUID(),
      displayName: options.displayName,
      customKeyIdentifier: null,
      hint: secretText.slice(0, 3),
      startDateTime: new Date(startMs).toISOString(),
      endDateTime: new Date(options.endMs ?? startMs + 2 * 365 * 24 * 3600 * 1000).toISOString(),
      secretText,
      usableFromMs: Date.now() + delayMs,
    };
  }

  #publicPassword(password: StoredPassword): FakePasswordCredential {
    const { keyId, displayName, customKeyIdentifier, hint, startDateTime, endDateTime } = password;
    return { keyId, displayName, customKeyIdentifier, hint, startDateTime, endDateTime };
  }

  #findByAppId(appId: string): Application {
    const application = [...this.#applications.values()].find((candidate) => candidate.appId === appId);
    if (application === undefined) throw new Error(`the fake has no application ${appId}`);
    return application;
  }

  // Key Vault

  #vaultError(status: number, code: string, message: string, innerCode?: string, headers: Record<string, string> = {}): HttpError {
    return new HttpError(status, { error: { code, message, ...(innerCode === undefined ? {} : { innererror: { code: innerCode } }) } }, headers);
  }

  #keyVault(request: IncomingMessage, url: URL, path: string, body: string, entry: FakeAzureRequest): [number, unknown] {
    const method = request.method ?? 'GET';
    const segments = path.slice('/secrets/'.length).split('/');
    const name = segments[0] ?? '';
    // `/secrets/{name}/` (an empty version) reads the latest version, as `/secrets/{name}` does.
    const rest = segments.slice(1).filter((segment) => segment !== '');
    entry.route = 'getSecret';
    if (method === 'PUT') entry.route = 'setSecret';
    if (method === 'PATCH') entry.route = 'updateSecret';
    if (rest[0] === 'versions') entry.route = 'listSecretVersions';

    // Key Vault responds to an unauthenticated request with a challenge that names the tenant to
    // authenticate against and the resource to request a token for.
    const caller = this.#bearer(request, KEY_VAULT_AUDIENCE);
    if (caller === null) {
      throw this.#vaultError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.', undefined, {
        'www-authenticate': `Bearer authorization="${this.#url}/${this.tenantId}", resource="${KEY_VAULT_AUDIENCE}"`,
      });
    }
    if (url.searchParams.get('api-version') === null) {
      throw this.#vaultError(400, 'BadParameter', 'The api-version query parameter is missing.');
    }
    if (!this.vaultClients.has(caller.clientId)) {
      throw this.#vaultError(403, 'Forbidden', `Caller is not authorized to perform action on resource. Caller: appid=${caller.clientId}`, 'ForbiddenByRbac');
    }
    if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) {
      throw this.#vaultError(400, 'BadParameter', `The secret name '${name}' is invalid: use 1 to 127 letters, digits and dashes.`);
    }

    if (method === 'PUT' && rest.length === 0) return [200, this.#putSecret(name, body)];
    if (method === 'GET' && rest.length === 1 && rest[0] === 'versions') return [200, this.#listVersions(name, url)];
    if (method === 'GET' && rest.length <= 1) return [200, this.#bundle(name, this.#findVersion(name, rest[0] ?? '', true), true)];
    if (method === 'PATCH' && rest.length === 1) return [200, this.#updateVersion(name, rest[0]!, body)];
    throw this.#vaultError(405, 'BadParameter', `Method ${method} is not allowed on ${path}.`);
  }

  #putSecret(name: string, body: string): unknown {
    const parsed = JSON.parse(body === '' ? '{}' : body) as { value?: unknown; tags?: Record<string, string>; contentType?: string; attributes?: { enabled?: boolean } };
    if (typeof parsed.value !== 'string') throw this.#vaultError(400, 'BadParameter', 'Property value is required.');
    const version = this.#setSecret(name, {
      value: parsed.value,
      tags: parsed.tags ?? {},
      contentType: parsed.contentType ?? null,
      enabled: parsed.attributes?.enabled ?? true,
    });
    return this.#bundle(name, version, true);
  }

  #setSecret(name: string, input: { value: string; tags: Record<string, string>; contentType: string | null; enabled: boolean }): SecretVersion {
    const now = nowSeconds();
    const version: SecretVersion = { version: secretVersionId(), ...input, tags: { ...input.tags }, createdSeconds: now, updatedSeconds: now };
    const versions = this.#secrets.get(name) ?? [];
    versions.push(version);
    this.#secrets.set(name, versions);
    return version;
  }

  #findVersion(name: string, versionId: string, forRead: boolean): SecretVersion {
    const versions = this.#secrets.get(name) ?? [];
    const version = versionId === '' ? versions.at(-1) : versions.find((candidate) => candidate.version === versionId);
    if (version === undefined) {
      const described = versionId === '' ? name : `${name}/${versionId}`;
      throw this.#vaultError(404, 'SecretNotFound', `A secret with (name/id) ${described} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.`);
    }
    if (forRead && !version.enabled) {
      throw this.#vaultError(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
    }
    return version;
  }

  #updateVersion(name: string, versionId: string, body: string): unknown {
    const version = this.#findVersion(name, versionId, false);
    const parsed = JSON.parse(body === '' ? '{}' : body) as { tags?: Record<string, string>; contentType?: string; attributes?: { enabled?: boolean } };
    if (parsed.attributes?.enabled !== undefined) version.enabled = parsed.attributes.enabled;
    if (parsed.tags !== undefined) version.tags = { ...parsed.tags };
    if (parsed.contentType !== undefined) version.contentType = parsed.contentType;
    version.updatedSeconds = nowSeconds();
    return this.#bundle(name, version, false);
  }

  #listVersions(name: string, url: URL): unknown {
    const versions = this.#secrets.get(name);
    if (versions === undefined) return { value: [], nextLink: null };
    const pageSize = Math.min(Number(url.searchParams.get('maxresults') ?? '25') || 25, 25);
    const skip = Number(url.searchParams.get('$skiptoken') ?? '0');
    const page = versions.slice(skip, skip + pageSize).map((version) => this.#bundle(name, version, false));
    let nextLink: string | null = null;
    if (skip + pageSize < versions.length) {
      const next = new URL(`/secrets/${name}/versions`, this.#url);
      next.searchParams.set('api-version', url.searchParams.get('api-version') ?? '');
      next.searchParams.set('$skiptoken', String(skip + pageSize));
      next.searchParams.set('maxresults', String(pageSize));
      nextLink = next.toString();
    }
    return { value: page, nextLink };
  }

  #bundle(name: string, version: SecretVersion, withValue: boolean): Record<string, unknown> {
    return {
      ...(withValue ? { value: version.value } : {}),
      ...(version.contentType === null ? {} : { contentType: version.contentType }),
      id: `${this.#url}/secrets/${name}/${version.version}`,
      attributes: { enabled: version.enabled, created: version.createdSeconds, updated: version.updatedSeconds, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
      tags: { ...version.tags },
    };
  }
}
