import { RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { describeCall, type VaultCall } from './http.js';

/**
 * Typed readers of the Vault responses that rekey uses. Each parser checks the fields it returns
 * and throws a ResponseShapeError naming the first field that is missing or of the wrong type.
 * Secret fields (tokens, secret IDs, KV data) are wrapped in SecretValue as they are read, and no
 * message quotes a field's value.
 */

export class ResponseShapeError extends Error {
  constructor(field: string, expected: string) {
    super(`${field} is not ${expected}`);
    this.name = 'ResponseShapeError';
  }
}

type Json = Record<string, unknown>;

function objectAt(value: unknown, field: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ResponseShapeError(field, 'an object');
  return value as Json;
}

function stringAt(object: Json, key: string, field: string): string {
  const value = object[key];
  if (typeof value !== 'string') throw new ResponseShapeError(`${field}.${key}`, 'a string');
  return value;
}

function integerAt(object: Json, key: string, field: string): number {
  const value = object[key];
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ResponseShapeError(`${field}.${key}`, 'an integer');
  return value;
}

function booleanAt(object: Json, key: string, field: string): boolean {
  const value = object[key];
  if (typeof value !== 'boolean') throw new ResponseShapeError(`${field}.${key}`, 'a boolean');
  return value;
}

function stringsAt(object: Json, key: string, field: string): string[] {
  const value = object[key];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new ResponseShapeError(`${field}.${key}`, 'a list of strings');
  return value as string[];
}

/** Reads a map of strings that Vault sends as null when it is empty. */
function stringMapAt(object: Json, key: string, field: string): Record<string, string> {
  const value = object[key];
  if (value === null || value === undefined) return {};
  const map = objectAt(value, `${field}.${key}`);
  for (const [name, item] of Object.entries(map)) {
    if (typeof item !== 'string') throw new ResponseShapeError(`${field}.${key}.${name}`, 'a string');
  }
  return map as Record<string, string>;
}

function dataOf(body: unknown): Json {
  return objectAt(objectAt(body, 'body').data, 'data');
}

/** A token that a login or a renewal returned. */
export interface VaultAuth {
  token: SecretValue;
  accessor: string;
  /** Seconds until the token expires, or 0 for a token that never does. */
  leaseSeconds: number;
  renewable: boolean;
  policies: string[];
}

export function parseAuth(body: unknown): VaultAuth {
  const auth = objectAt(objectAt(body, 'body').auth, 'auth');
  return {
    token: SecretValue.fromString(stringAt(auth, 'client_token', 'auth')),
    accessor: stringAt(auth, 'accessor', 'auth'),
    leaseSeconds: integerAt(auth, 'lease_duration', 'auth'),
    renewable: booleanAt(auth, 'renewable', 'auth'),
    policies: stringsAt(auth, 'policies', 'auth'),
  };
}

/** Properties of the calling token from lookup-self. The token itself (`id`) is not read. */
export interface VaultTokenInfo {
  accessor: string;
  /** Seconds left until the token expires, or 0 for a token that never does. */
  ttlSeconds: number;
  /** The TTL the token was created with, in seconds. */
  creationTtlSeconds: number;
  renewable: boolean;
  policies: string[];
  /** The expiry time as Vault reports it (RFC 3339), or null for a token that never expires. */
  expireTime: string | null;
}

export function parseTokenLookup(body: unknown): VaultTokenInfo {
  const data = dataOf(body);
  const expireTime = data.expire_time;
  if (expireTime !== null && expireTime !== undefined && typeof expireTime !== 'string') throw new ResponseShapeError('data.expire_time', 'a string or null');
  return {
    accessor: stringAt(data, 'accessor', 'data'),
    ttlSeconds: integerAt(data, 'ttl', 'data'),
    creationTtlSeconds: integerAt(data, 'creation_ttl', 'data'),
    renewable: booleanAt(data, 'renewable', 'data'),
    policies: stringsAt(data, 'policies', 'data'),
    expireTime: expireTime ?? null,
  };
}

export interface VaultHealth {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  version: string;
}

export function parseHealth(body: unknown): VaultHealth {
  const health = objectAt(body, 'body');
  return {
    initialized: booleanAt(health, 'initialized', 'body'),
    sealed: booleanAt(health, 'sealed', 'body'),
    standby: booleanAt(health, 'standby', 'body'),
    version: stringAt(health, 'version', 'body'),
  };
}

/** Metadata of one KV version, as a data read or write returns it. */
export interface KvVersionMetadata {
  version: number;
  createdTime: string;
  /** Empty unless the version is soft-deleted or scheduled for deletion. */
  deletionTime: string;
  destroyed: boolean;
  /** The key's custom metadata, which is the same for every version. */
  customMetadata: Record<string, string>;
}

function parseVersionMetadata(object: Json, field: string): KvVersionMetadata {
  return {
    version: integerAt(object, 'version', field),
    createdTime: stringAt(object, 'created_time', field),
    deletionTime: stringAt(object, 'deletion_time', field),
    destroyed: booleanAt(object, 'destroyed', field),
    customMetadata: stringMapAt(object, 'custom_metadata', field),
  };
}

export interface KvVersion {
  /** The key-value pairs, each wrapped, or null when the version is soft-deleted or destroyed. */
  data: Record<string, SecretValue> | null;
  metadata: KvVersionMetadata;
}

/**
 * Parses a KV data read. Values that are not strings are kept as their JSON text, because rekey
 * only writes strings and never needs their type.
 */
export function parseKvVersion(body: unknown): KvVersion {
  const data = dataOf(body);
  const metadata = parseVersionMetadata(objectAt(data.metadata, 'data.metadata'), 'data.metadata');
  if (data.data === null) return { data: null, metadata };

  const values: Record<string, SecretValue> = {};
  for (const [key, value] of Object.entries(objectAt(data.data, 'data.data'))) {
    values[key] = SecretValue.fromString(typeof value === 'string' ? value : JSON.stringify(value));
  }
  return { data: values, metadata };
}

export function parseKvWrite(body: unknown): KvVersionMetadata {
  return parseVersionMetadata(dataOf(body), 'data');
}

export interface KvMetadata {
  currentVersion: number;
  oldestVersion: number;
  maxVersions: number;
  casRequired: boolean;
  customMetadata: Record<string, string>;
  versions: Map<number, { deletionTime: string; destroyed: boolean }>;
}

export function parseKvMetadata(body: unknown): KvMetadata {
  const data = dataOf(body);
  const versions = new Map<number, { deletionTime: string; destroyed: boolean }>();
  for (const [number, value] of Object.entries(objectAt(data.versions, 'data.versions'))) {
    const field = `data.versions.${number}`;
    const version = objectAt(value, field);
    versions.set(Number(number), { deletionTime: stringAt(version, 'deletion_time', field), destroyed: booleanAt(version, 'destroyed', field) });
  }
  return {
    currentVersion: integerAt(data, 'current_version', 'data'),
    oldestVersion: integerAt(data, 'oldest_version', 'data'),
    maxVersions: integerAt(data, 'max_versions', 'data'),
    casRequired: booleanAt(data, 'cas_required', 'data'),
    customMetadata: stringMapAt(data, 'custom_metadata', 'data'),
    versions,
  };
}

/** Parses the `keys` of a LIST response. */
export function parseKeys(body: unknown): string[] {
  return stringsAt(dataOf(body), 'keys', 'data');
}

export function parseRoleId(body: unknown): string {
  return stringAt(dataOf(body), 'role_id', 'data');
}

export interface CreatedSecretId {
  secretId: SecretValue;
  accessor: string;
}

export function parseCreatedSecretId(body: unknown): CreatedSecretId {
  const data = dataOf(body);
  return {
    secretId: SecretValue.fromString(stringAt(data, 'secret_id', 'data')),
    accessor: stringAt(data, 'secret_id_accessor', 'data'),
  };
}

export interface SecretIdInfo {
  accessor: string;
  creationTime: string;
  expirationTime: string;
  /** Logins left before the secret ID stops working, or 0 for no limit. */
  numUses: number;
  metadata: Record<string, string>;
}

export function parseSecretIdInfo(body: unknown): SecretIdInfo {
  const data = dataOf(body);
  return {
    accessor: stringAt(data, 'secret_id_accessor', 'data'),
    creationTime: stringAt(data, 'creation_time', 'data'),
    expirationTime: stringAt(data, 'expiration_time', 'data'),
    numUses: integerAt(data, 'secret_id_num_uses', 'data'),
    metadata: stringMapAt(data, 'metadata', 'data'),
  };
}

/** Parses sys/capabilities-self, which returns each path's capabilities in `data` and at the top level. */
export function parseCapabilities(body: unknown, paths: readonly string[]): Record<string, string[]> {
  const top = objectAt(body, 'body');
  const data = top.data === undefined || top.data === null ? top : objectAt(top.data, 'data');
  const result: Record<string, string[]> = {};
  for (const path of paths) result[path] = stringsAt(data, path, data === top ? 'body' : 'data');
  return result;
}

/** Runs `parser` on a response body, turning a shape error into an INTERNAL error that names the call. */
export function parseWith<T>(call: VaultCall, body: unknown, parser: (body: unknown) => T): T {
  try {
    return parser(body);
  } catch (error) {
    if (!(error instanceof ResponseShapeError)) throw error;
    throw new RekeyError('INTERNAL', `Vault returned an unexpected response to ${describeCall(call)}: ${error.message}. Check that REKEY_VAULT_ADDR points at Vault and that the mount has the expected type`);
  }
}
