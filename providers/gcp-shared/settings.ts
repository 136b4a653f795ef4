import { readFileSync } from 'node:fs';
import type { Env } from '../../src/contracts.js';
import { quoteError, RekeyError } from '../../src/errors.js';
import {
  DEFAULT_IAM_CREDENTIALS_ENDPOINT,
  DEFAULT_IAM_ENDPOINT,
  DEFAULT_SECRET_MANAGER_ENDPOINT,
  DEFAULT_TOKEN_INFO_URL,
  GCP_CA_FILE_ENV,
  GCP_CREDENTIALS_FILE_ENV,
  GCP_IAM_CREDENTIALS_ENDPOINT_ENV,
  GCP_IAM_ENDPOINT_ENV,
  GCP_IMPERSONATE_ENV,
  GCP_SECRET_MANAGER_ENDPOINT_ENV,
  GCP_TOKEN_INFO_URL_ENV,
  GCP_TOKEN_URL_ENV,
  GCP_USE_ADC_ENV,
} from './constants.js';

/** rekey's admin identity at Google. */
export type GcpAdminCredentials =
  | { kind: 'key-file'; path: string }
  /** Application Default Credentials, used only when REKEY_GCP_USE_ADC=true. */
  | { kind: 'adc' };

/** The settings every GCP client of rekey is built with, read once from the environment. */
export interface GcpSettings {
  /** The OAuth token endpoint. Unset means the admin key file's `token_uri`, then Google's endpoint. */
  tokenUrl: string | undefined;
  /** The endpoint that describes an access token: REKEY_GCP_TOKEN_INFO_URL, else `tokeninfo` beside the token URL. */
  tokenInfoUrl: string;
  iamEndpoint: URL;
  iamCredentialsEndpoint: URL;
  secretManagerEndpoint: URL;
  /** PEM CA certificates that TLS connections to the endpoints are verified against, instead of Node's defaults. */
  ca: Buffer | undefined;
  credentials: GcpAdminCredentials;
  /** The rotator service account that rekey impersonates for its admin calls, if any. */
  impersonate: string | undefined;
}

function setting(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function invalidSetting(message: string): RekeyError {
  return new RekeyError('INVALID_PARAMETERS', message);
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Parses a URL that carries tokens or key material: https, or http on a loopback address only (a
 * local test server or proxy). `source` names where the URL came from, for the message.
 */
export function secureUrl(text: string, source: string, example: string): URL {
  if (!URL.canParse(text)) throw invalidSetting(`${source}="${text}" is not a valid URL: expected a URL such as ${example}`);
  const url = new URL(text);
  const loopbackHttp = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) {
    throw invalidSetting(`${source}="${text}" is invalid: expected an https:// URL such as ${example} (http:// only on a loopback address)`);
  }
  return url;
}

/** Reads an http(s) base URL such as https://iam.googleapis.com from `name`, or returns `fallback`. */
function readEndpoint(env: Env, name: string, fallback: string): URL {
  const text = setting(env, name) ?? fallback;
  const url = secureUrl(text, name, fallback);
  if (url.pathname !== '/' || url.search !== '') {
    throw invalidSetting(`${name}="${text}" is invalid: expected a URL without a path, such as ${fallback}`);
  }
  return url;
}

/**
 * Reads rekey's GCP settings. Exactly one admin identity must be configured: a service-account
 * key file (REKEY_GCP_CREDENTIALS_FILE) or Application Default Credentials
 * (REKEY_GCP_USE_ADC=true). ADC is never a silent fallback, because its lookup can reach the
 * metadata server. REKEY_GCP_IMPERSONATE_SERVICE_ACCOUNT names an optional rotator service account.
 */
export function readGcpSettings(env: Env): GcpSettings {
  const keyFile = setting(env, GCP_CREDENTIALS_FILE_ENV);
  const adcText = setting(env, GCP_USE_ADC_ENV);
  if (adcText !== undefined && adcText !== 'true' && adcText !== 'false') {
    throw invalidSetting(`${GCP_USE_ADC_ENV}="${adcText}" is invalid: expected true or false`);
  }
  const useAdc = adcText === 'true';
  if (keyFile !== undefined && useAdc) {
    throw invalidSetting(`${GCP_CREDENTIALS_FILE_ENV} and ${GCP_USE_ADC_ENV}=true are both set: choose one admin identity for rekey`);
  }
  if (keyFile === undefined && !useAdc) {
    throw invalidSetting(
      `neither ${GCP_CREDENTIALS_FILE_ENV} nor ${GCP_USE_ADC_ENV}=true is set: set the path of rekey's service-account key file, ` +
        'or opt in to Application Default Credentials',
    );
  }

  const tokenUrl = setting(env, GCP_TOKEN_URL_ENV);
  if (tokenUrl !== undefined) secureUrl(tokenUrl, GCP_TOKEN_URL_ENV, 'https://oauth2.googleapis.com/token');

  const tokenInfoUrl = setting(env, GCP_TOKEN_INFO_URL_ENV) ?? (tokenUrl === undefined ? DEFAULT_TOKEN_INFO_URL : new URL('tokeninfo', tokenUrl).toString());
  secureUrl(tokenInfoUrl, GCP_TOKEN_INFO_URL_ENV, DEFAULT_TOKEN_INFO_URL);

  const impersonate = setting(env, GCP_IMPERSONATE_ENV);
  if (impersonate !== undefined && !impersonate.includes('@')) {
    throw invalidSetting(`${GCP_IMPERSONATE_ENV}="${impersonate}" is invalid: expected a service account email such as rotator@project.iam.gserviceaccount.com`);
  }

  return {
    tokenUrl,
    tokenInfoUrl,
    iamEndpoint: readEndpoint(env, GCP_IAM_ENDPOINT_ENV, DEFAULT_IAM_ENDPOINT),
    iamCredentialsEndpoint: readEndpoint(env, GCP_IAM_CREDENTIALS_ENDPOINT_ENV, DEFAULT_IAM_CREDENTIALS_ENDPOINT),
    secretManagerEndpoint: readEndpoint(env, GCP_SECRET_MANAGER_ENDPOINT_ENV, DEFAULT_SECRET_MANAGER_ENDPOINT),
    ca: readCaFile(env),
    credentials: keyFile === undefined ? { kind: 'adc' } : { kind: 'key-file', path: keyFile },
    impersonate,
  };
}

function readCaFile(env: Env): Buffer | undefined {
  const caFile = setting(env, GCP_CA_FILE_ENV);
  if (caFile === undefined) return undefined;
  try {
    return readFileSync(caFile);
  } catch (error) {
    throw invalidSetting(`${GCP_CA_FILE_ENV}="${caFile}" cannot be read (${quoteError(error)}): set it to a PEM file of the CA certificates that sign the endpoints' certificates`);
  }
}

/** The connection options of a google-gax client (REST transport) for `endpoint`. */
export type GapicEndpointOptions = {
  apiEndpoint: string;
  port: number;
  protocol: 'http' | 'https';
  fallback: true;
};

/**
 * Splits an endpoint URL into the options a google-gax client takes. The port must be separate,
 * because the clients do not accept it inside `apiEndpoint`.
 */
export function gapicEndpointOptions(endpoint: URL): GapicEndpointOptions {
  const protocol = endpoint.protocol === 'http:' ? 'http' : 'https';
  const defaultPort = protocol === 'http' ? 80 : 443;
  const port = endpoint.port === '' ? defaultPort : Number(endpoint.port);
  // gax joins host and port with a colon, so an IPv6 host keeps the brackets the URL API gives it.
  return { apiEndpoint: endpoint.hostname, port, protocol, fallback: true };
}

/** Reads a positive whole number of milliseconds from `env`, or returns `fallback` when unset. */
export function readMilliseconds(env: Env, name: string, fallback: number): number {
  const text = setting(env, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) {
    throw invalidSetting(`${name}="${text}" is invalid: expected a positive whole number of milliseconds`);
  }
  return value;
}
