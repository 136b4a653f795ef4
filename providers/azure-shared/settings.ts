import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Env } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import {
  DEFAULT_AUTHORITY_HOST,
  DEFAULT_GRAPH_ENDPOINT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  MICROSOFT_AUTHORITY_HOSTS,
  WORKLOAD_IDENTITY_VARIABLES,
} from './constants.js';

/** rekey's own credential for Entra ID, in one of three kinds. */
export type AdminCredentialSettings =
  | { kind: 'client-secret'; tenantId: string; clientId: string; secret: SecretValue }
  | { kind: 'workload-identity'; tenantId: string; clientId: string; tokenFilePath: string }
  | { kind: 'default'; tenantId: string | undefined; clientId: string | undefined };

/** rekey's Azure endpoints and identity, read once from the environment. */
export interface AzureSettings {
  /** The Entra ID authority host, such as https://login.microsoftonline.com. */
  authorityHost: string;
  /** True unless the authority host is one of Microsoft's, so that MSAL never queries Microsoft's discovery endpoint about it. */
  disableInstanceDiscovery: boolean;
  /** The Microsoft Graph origin, such as https://graph.microsoft.com. */
  graphEndpoint: string;
  /** The scope of Graph tokens, such as https://graph.microsoft.com/.default. */
  graphScope: string;
  /** The tenant of rekey's identity, and the default tenant of rotated applications. */
  tenantId: string | undefined;
  /** Trusted CA certificates (PEM) for every Azure connection: Node's bundled CAs plus REKEY_AZURE_CA_FILE, or undefined for Node's default. */
  ca: string[] | undefined;
  /** Whether SecretClient may skip its check that a Key Vault challenge names the vault's domain. */
  disableChallengeResourceVerification: boolean;
  requestTimeoutMs: number;
  credential: AdminCredentialSettings;
}

function invalidSetting(message: string): RekeyError {
  return new RekeyError('INVALID_PARAMETERS', message);
}

function optional(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Reads an https origin (no path) from `name`, or returns `fallback` when unset. */
function readHttpsOrigin(env: Env, name: string, fallback: string): string {
  const text = optional(env, name) ?? fallback;
  if (!URL.canParse(text)) throw invalidSetting(`${name}="${text}" is not a valid URL: expected an https URL such as ${fallback}`);
  const url = new URL(text);
  if (url.protocol !== 'https:') {
    throw invalidSetting(`${name}="${text}" must use https: Entra ID tokens and client secrets are never sent over plain http`);
  }
  return url.origin;
}

function readBoolean(env: Env, name: string): boolean {
  const text = optional(env, name);
  if (text === undefined || text === 'false') return false;
  if (text === 'true') return true;
  throw invalidSetting(`${name}="${text}" is invalid: expected true or false`);
}

function readPositiveInteger(env: Env, name: string, fallback: number): number {
  const text = optional(env, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw invalidSetting(`${name}="${text}" is invalid: expected a positive whole number of milliseconds`);
  return value;
}

/** Reads the CA file and returns Node's bundled CAs with its certificates added, or undefined when unset. */
function readCa(env: Env): string[] | undefined {
  const path = optional(env, 'REKEY_AZURE_CA_FILE');
  if (path === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalidSetting(`REKEY_AZURE_CA_FILE="${path}" cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}): point it at a PEM file of CA certificates`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw invalidSetting(`REKEY_AZURE_CA_FILE="${path}" contains no PEM certificate`);
  }
  return [...rootCertificates, pem];
}

/** Reads the client secret from REKEY_AZURE_CLIENT_SECRET or the file REKEY_AZURE_CLIENT_SECRET_FILE names. */
function readClientSecret(env: Env): SecretValue | undefined {
  const inline = optional(env, 'REKEY_AZURE_CLIENT_SECRET');
  const path = optional(env, 'REKEY_AZURE_CLIENT_SECRET_FILE');
  if (inline !== undefined && path !== undefined) {
    throw invalidSetting('REKEY_AZURE_CLIENT_SECRET and REKEY_AZURE_CLIENT_SECRET_FILE are both set: set only one');
  }
  if (inline !== undefined) return SecretValue.fromString(inline);
  if (path === undefined) return undefined;
  try {
    const text = readFileSync(path, 'utf8').trim();
    if (text === '') throw invalidSetting(`REKEY_AZURE_CLIENT_SECRET_FILE="${path}" is empty`);
    return SecretValue.fromString(text);
  } catch (error) {
    if (error instanceof RekeyError) throw error;
    throw invalidSetting(`REKEY_AZURE_CLIENT_SECRET_FILE="${path}" cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function requireSetting(value: string | undefined, message: string): string {
  if (value === undefined) throw invalidSetting(message);
  return value;
}

/**
 * Picks rekey's credential. REKEY_AZURE_CREDENTIAL selects it (`client-secret`,
 * `workload-identity` or `default`). When unset, a configured client secret means
 * `client-secret`, and AZURE_FEDERATED_TOKEN_FILE (set by the AKS workload identity webhook) means
 * `workload-identity`. DefaultAzureCredential tries many sources in turn, including the instance
 * metadata endpoint and developer logins, so it is used only when chosen by name.
 */
function readCredential(env: Env, tenantId: string | undefined): AdminCredentialSettings {
  const secret = readClientSecret(env);
  const clientId = optional(env, 'REKEY_AZURE_CLIENT_ID');
  const tokenFile = optional(env, 'AZURE_FEDERATED_TOKEN_FILE');
  let chosen = optional(env, 'REKEY_AZURE_CREDENTIAL');
  if (chosen === undefined && secret !== undefined) chosen = 'client-secret';
  if (chosen === undefined && tokenFile !== undefined) chosen = 'workload-identity';

  switch (chosen) {
    case 'client-secret':
      if (secret === undefined) {
        throw invalidSetting('REKEY_AZURE_CREDENTIAL is client-secret, but neither REKEY_AZURE_CLIENT_SECRET nor REKEY_AZURE_CLIENT_SECRET_FILE is set');
      }
      return {
        kind: 'client-secret',
        tenantId: requireSetting(tenantId, 'REKEY_AZURE_TENANT_ID is not set: the client-secret credential needs the tenant of rekey\'s application'),
        clientId: requireSetting(clientId, 'REKEY_AZURE_CLIENT_ID is not set: the client-secret credential needs the application (client) id of rekey'),
        secret,
      };
    case 'workload-identity': {
      const workloadTenant = tenantId ?? optional(env, 'AZURE_TENANT_ID');
      const workloadClient = clientId ?? optional(env, 'AZURE_CLIENT_ID');
      const missing = WORKLOAD_IDENTITY_VARIABLES.filter((name) => ({ AZURE_TENANT_ID: workloadTenant, AZURE_CLIENT_ID: workloadClient, AZURE_FEDERATED_TOKEN_FILE: tokenFile })[name] === undefined);
      if (missing.length > 0) {
        throw invalidSetting(`the workload-identity credential needs ${missing.join(', ')}: the AKS workload identity webhook sets them when the pod's service account is annotated with a client id`);
      }
      return { kind: 'workload-identity', tenantId: workloadTenant!, clientId: workloadClient!, tokenFilePath: tokenFile! };
    }
    case 'default':
      return { kind: 'default', tenantId, clientId };
    case undefined:
      throw invalidSetting(
        'rekey has no Azure credential: set REKEY_AZURE_TENANT_ID, REKEY_AZURE_CLIENT_ID and REKEY_AZURE_CLIENT_SECRET (or _FILE), ' +
          'run with AKS workload identity, or set REKEY_AZURE_CREDENTIAL=default to use DefaultAzureCredential',
      );
    default:
      throw invalidSetting(`REKEY_AZURE_CREDENTIAL="${chosen}" is invalid: expected client-secret, workload-identity or default`);
  }
}

/**
 * Reads rekey's Azure settings from `env`: REKEY_AZURE_AUTHORITY_HOST, REKEY_AZURE_GRAPH_ENDPOINT,
 * REKEY_AZURE_GRAPH_SCOPE, REKEY_AZURE_TENANT_ID, REKEY_AZURE_CA_FILE,
 * REKEY_AZURE_KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION, REKEY_AZURE_REQUEST_TIMEOUT_MS
 * and the credential variables (see readCredential). Nothing falls back to the SDKs' own
 * environment variables except the workload identity ones.
 */
export function readAzureSettings(env: Env): AzureSettings {
  const authorityHost = readHttpsOrigin(env, 'REKEY_AZURE_AUTHORITY_HOST', DEFAULT_AUTHORITY_HOST);
  const graphEndpoint = readHttpsOrigin(env, 'REKEY_AZURE_GRAPH_ENDPOINT', DEFAULT_GRAPH_ENDPOINT);
  const graphScope = optional(env, 'REKEY_AZURE_GRAPH_SCOPE') ?? `${graphEndpoint}/.default`;
  const tenantId = optional(env, 'REKEY_AZURE_TENANT_ID');
  return {
    authorityHost,
    disableInstanceDiscovery: !MICROSOFT_AUTHORITY_HOSTS.has(new URL(authorityHost).hostname),
    graphEndpoint,
    graphScope,
    tenantId,
    ca: readCa(env),
    disableChallengeResourceVerification: readBoolean(env, 'REKEY_AZURE_KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION'),
    requestTimeoutMs: readPositiveInteger(env, 'REKEY_AZURE_REQUEST_TIMEOUT_MS', DEFAULT_REQUEST_TIMEOUT_MS),
    credential: readCredential(env, tenantId),
  };
}
