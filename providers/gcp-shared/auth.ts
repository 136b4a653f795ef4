import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { IAMCredentialsClient } from '@google-cloud/iam-credentials';
import { GoogleAuth, OAuth2Client, type AuthClient } from 'google-auth-library';
import { quoteError, RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import {
  CLOUD_PLATFORM_SCOPE,
  DEFAULT_TOKEN_URL,
  GCP_CREDENTIALS_FILE_ENV,
  GCP_TOKEN_URL_ENV,
  IMPERSONATED_TOKEN_LIFETIME_SECONDS,
  JWT_BEARER_GRANT_TYPE,
} from './constants.js';
import { toRekeyError } from './errors.js';
import { parseServiceAccountKeyFile, signAssertion, type ServiceAccountKeyFile } from './key-file.js';
import { gapicEndpointOptions, secureUrl, type GapicEndpointOptions, type GcpSettings } from './settings.js';

/** The outcome of one JWT-bearer exchange at the token endpoint. */
export type TokenExchange =
  | { ok: true; accessToken: SecretValue; expiresInSeconds: number }
  /** The endpoint rejected the assertion: its HTTP status and OAuth error (RFC 6749, section 5.2). */
  | { ok: false; httpStatus: number; error: string; description: string };

interface TokenResponseBody {
  access_token?: unknown;
  expires_in?: unknown;
  error?: unknown;
  error_description?: unknown;
}

/** The part of a gaxios request configuration that rekey's CA interceptor changes. */
interface AgentConfig {
  url?: string | URL;
  agent?: unknown;
}

/** Makes every https request of `client` verify TLS against `agent`'s CA certificates. */
function useCaAgent(client: AuthClient, agent: Agent | undefined): void {
  if (agent === undefined) return;
  client.transporter.interceptors.request.add({
    resolved: async (config) => {
      const target = config as AgentConfig;
      if (target.url !== undefined && String(target.url).startsWith('https:')) target.agent = agent;
      return config;
    },
  });
}

/** Converts a protobuf Timestamp's seconds (a number, string or Long) into epoch milliseconds. */
function timestampMillis(seconds: unknown): number {
  const value = Number(typeof seconds === 'object' && seconds !== null ? String(seconds) : seconds);
  return Number.isFinite(value) ? value * 1000 : Date.now();
}

/**
 * rekey's own GCP identity: its admin client (a service-account key file, or Application Default
 * Credentials when explicitly configured, optionally impersonating a rotator service account)
 * and the unauthenticated token exchange that verify uses. Clients are created on first use.
 */
export class GcpAuth {
  readonly settings: GcpSettings;
  readonly #agent: Agent | undefined;
  /** A client without credentials, whose transporter sends the unauthenticated token requests. */
  readonly #anonymous: OAuth2Client;
  #admin: Promise<AuthClient> | undefined;
  #iamCredentials: IAMCredentialsClient | undefined;
  readonly #gapicClients: Array<{ close(): Promise<void> }> = [];

  constructor(settings: GcpSettings) {
    this.settings = settings;
    this.#agent = settings.ca === undefined ? undefined : new Agent({ ca: settings.ca, keepAlive: true });
    this.#anonymous = new OAuth2Client();
    useCaAgent(this.#anonymous, this.#agent);
  }

  /**
   * Returns the token endpoint for `keyFile`: REKEY_GCP_TOKEN_URL, else Google's. Only rekey's own
   * key file (`trusted`, mounted by the operator) may name another one in its `token_uri`. A key
   * file read back from a store is data that anyone with write access to the store controls, so its
   * `token_uri` is never followed: it could send the signed assertion elsewhere and fake a verify.
   */
  tokenUrlFor(keyFile: ServiceAccountKeyFile, trusted: boolean): string {
    const url = this.settings.tokenUrl ?? (trusted ? keyFile.token_uri : this.#adminTokenUri()) ?? DEFAULT_TOKEN_URL;
    secureUrl(url, this.settings.tokenUrl === undefined ? 'the key file\'s token_uri' : GCP_TOKEN_URL_ENV, DEFAULT_TOKEN_URL);
    return url;
  }

  /** Returns the `token_uri` of rekey's own key file, the operator's choice, if rekey uses one. */
  #adminTokenUri(): string | undefined {
    if (this.settings.credentials.kind !== 'key-file') return undefined;
    const path = this.settings.credentials.path;
    try {
      return parseServiceAccountKeyFile(readFileSync(path, 'utf8'), `${GCP_CREDENTIALS_FILE_ENV} (${path})`).token_uri;
    } catch {
      // The admin client reports an unreadable key file with its own message.
      return undefined;
    }
  }

  /**
   * Exchanges a JWT signed with `keyFile`'s private key for an access token. A rejection by the
   * endpoint is returned, not thrown, so that verify can tell a key still propagating from a
   * broken endpoint. Throws only when the request fails, for example when the endpoint cannot be reached.
   */
  async exchangeKey(keyFile: ServiceAccountKeyFile, options: { trusted: boolean; signal?: AbortSignal }): Promise<TokenExchange> {
    const { signal } = options;
    const tokenUrl = this.tokenUrlFor(keyFile, options.trusted);
    const assertion = await signAssertion(keyFile, tokenUrl, CLOUD_PLATFORM_SCOPE);
    let response;
    try {
      response = await this.#anonymous.transporter.request<TokenResponseBody>({
        url: tokenUrl,
        method: 'POST',
        data: new URLSearchParams({ grant_type: JWT_BEARER_GRANT_TYPE, assertion }),
        responseType: 'json',
        validateStatus: () => true,
        signal,
        retry: false,
      });
    } catch (error) {
      throw toRekeyError(error, 'the token request', `token endpoint ${tokenUrl}`, [SecretValue.fromString(assertion)]);
    }

    const body = (typeof response.data === 'object' && response.data !== null ? response.data : {}) as TokenResponseBody;
    if (response.status === 200 && typeof body.access_token === 'string') {
      const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : 3600;
      return { ok: true, accessToken: SecretValue.fromString(body.access_token), expiresInSeconds: expiresIn };
    }
    return {
      ok: false,
      httpStatus: response.status,
      error: typeof body.error === 'string' ? body.error : `HTTP ${response.status}`,
      description: typeof body.error_description === 'string' ? body.error_description.slice(0, 200) : '',
    };
  }

  /**
   * Asks the tokeninfo endpoint about an access token. The token travels in a form body, not in
   * the URL, so that no proxy or server log records it. Returns the HTTP status and the JSON body.
   */
  async tokenInfo(accessToken: SecretValue, signal?: AbortSignal): Promise<{ httpStatus: number; body: Record<string, unknown> }> {
    const url = this.settings.tokenInfoUrl;
    let response;
    try {
      response = await this.#anonymous.transporter.request<Record<string, unknown>>({
        url,
        method: 'POST',
        data: new URLSearchParams({ access_token: accessToken.reveal() }),
        responseType: 'json',
        validateStatus: () => true,
        signal,
        retry: false,
      });
    } catch (error) {
      throw toRekeyError(error, 'the tokeninfo request', `tokeninfo endpoint ${url}`, [accessToken]);
    }
    const body = typeof response.data === 'object' && response.data !== null ? response.data : {};
    return { httpStatus: response.status, body };
  }

  /** Returns rekey's admin client, creating it on first use. */
  adminClient(): Promise<AuthClient> {
    this.#admin ??= this.#createAdminClient();
    return this.#admin;
  }

  /** Returns an IAM Credentials client that calls as rekey's admin identity. */
  async iamCredentials(): Promise<IAMCredentialsClient> {
    if (this.#iamCredentials === undefined) {
      this.#iamCredentials = this.#iamCredentialsClient(await this.adminClient());
    }
    return this.#iamCredentials;
  }

  /** Builds a google-gax client's options for `endpoint` that call as rekey's admin identity. */
  async gapicOptions(endpoint: URL): Promise<GapicEndpointOptions & { authClient: AuthClient }> {
    return { ...gapicEndpointOptions(endpoint), authClient: await this.adminClient() };
  }

  /** Registers a google-gax client for `close()`. */
  track(client: { close(): Promise<void> }): void {
    this.#gapicClients.push(client);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.#gapicClients.splice(0).map((client) => client.close()));
    this.#agent?.destroy();
  }

  async #createAdminClient(): Promise<AuthClient> {
    const source = this.settings.credentials.kind === 'adc' ? await this.#adcClient() : this.#keyFileClient(this.settings.credentials.path);
    const impersonate = this.settings.impersonate;
    if (impersonate === undefined) return source;

    // The long-lived identity needs only the Token Creator role on the rotator. The rotator has
    // the key and secret roles, and its tokens expire within the hour.
    const iamCredentials = this.#iamCredentialsClient(source);
    const client = new OAuth2Client();
    client.refreshHandler = async () => {
      let response;
      try {
        [response] = await iamCredentials.generateAccessToken({
          name: `projects/-/serviceAccounts/${impersonate}`,
          scope: [CLOUD_PLATFORM_SCOPE],
          lifetime: { seconds: IMPERSONATED_TOKEN_LIFETIME_SECONDS },
        });
      } catch (error) {
        throw toRekeyError(error, 'iam.serviceAccounts.getAccessToken', `rotator service account ${impersonate}`);
      }
      if (typeof response.accessToken !== 'string' || response.accessToken === '') {
        throw new RekeyError('INTERNAL', `generateAccessToken for rotator service account ${impersonate} returned no access token`);
      }
      return { access_token: response.accessToken, expiry_date: timestampMillis(response.expireTime?.seconds) };
    };
    useCaAgent(client, this.#agent);
    return client;
  }

  /** Creates a client that signs JWTs with rekey's key file and exchanges them at the token endpoint. */
  #keyFileClient(path: string): OAuth2Client {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new RekeyError('INVALID_PARAMETERS', `${GCP_CREDENTIALS_FILE_ENV}="${path}" cannot be read (${quoteError(error)}): set it to rekey's service-account key file`);
    }
    const keyFile = parseServiceAccountKeyFile(text, `${GCP_CREDENTIALS_FILE_ENV} (${path})`);

    const client = new OAuth2Client();
    client.refreshHandler = async () => {
      const exchange = await this.exchangeKey(keyFile, { trusted: true });
      if (!exchange.ok) {
        const retryable = exchange.httpStatus === 429 || exchange.httpStatus >= 500;
        throw new RekeyError(
          retryable ? 'UNAVAILABLE' : 'PERMISSION_DENIED',
          `the token endpoint ${this.tokenUrlFor(keyFile, true)} rejected rekey's key ${keyFile.private_key_id} of ${keyFile.client_email}: ` +
            `${exchange.error}${exchange.description === '' ? '' : ` (${exchange.description})`}. Check ${GCP_CREDENTIALS_FILE_ENV}`,
        );
      }
      return { access_token: exchange.accessToken.reveal(), expiry_date: Date.now() + exchange.expiresInSeconds * 1000 };
    };
    useCaAgent(client, this.#agent);
    return client;
  }

  async #adcClient(): Promise<AuthClient> {
    const client = await new GoogleAuth({ scopes: [CLOUD_PLATFORM_SCOPE] }).getClient();
    useCaAgent(client, this.#agent);
    return client;
  }

  #iamCredentialsClient(authClient: AuthClient): IAMCredentialsClient {
    const client = new IAMCredentialsClient({ ...gapicEndpointOptions(this.settings.iamCredentialsEndpoint), authClient });
    this.track(client);
    return client;
  }
}
