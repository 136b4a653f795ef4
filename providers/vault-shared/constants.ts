/** Environment variables that configure rekey's Vault client. */
export const VAULT_ADDR_ENV = 'REKEY_VAULT_ADDR';
export const VAULT_NAMESPACE_ENV = 'REKEY_VAULT_NAMESPACE';
export const VAULT_CACERT_ENV = 'REKEY_VAULT_CACERT';
export const VAULT_TOKEN_ENV = 'REKEY_VAULT_TOKEN';
export const VAULT_ROLE_ID_ENV = 'REKEY_VAULT_ROLE_ID';
export const VAULT_SECRET_ID_ENV = 'REKEY_VAULT_SECRET_ID';
export const VAULT_APPROLE_MOUNT_ENV = 'REKEY_VAULT_APPROLE_MOUNT';
export const VAULT_K8S_ROLE_ENV = 'REKEY_VAULT_K8S_ROLE';
export const VAULT_K8S_JWT_FILE_ENV = 'REKEY_VAULT_K8S_JWT_FILE';
export const VAULT_K8S_MOUNT_ENV = 'REKEY_VAULT_K8S_MOUNT';

/** Path at which Kubernetes mounts a pod's service account token. */
export const DEFAULT_K8S_JWT_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const DEFAULT_APPROLE_MOUNT = 'approle';
export const DEFAULT_K8S_MOUNT = 'kubernetes';

/** Time a Vault request may take, connection included, before it fails with TIMEOUT. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** Largest response body the client reads. Vault's responses to rekey's calls are a few kilobytes. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** The client renews its token once less than this fraction of the token's TTL is left. */
export const RENEW_FRACTION = 1 / 3;

/** Error text of a KV version 2 write whose `cas` is not the current version (vault-plugin-secrets-kv, path_data.go). */
export const CAS_MISMATCH_ERROR = 'check-and-set parameter did not match the current version';

/** Start of Vault's error text for a secret ID accessor that does not exist (AppRole, path_role.go). */
export const ACCESSOR_NOT_FOUND_ERROR = 'failed to find accessor entry for secret_id_accessor';

/** A path segment of a mount, a KV path or a role name: letters, digits, `.`, `_` and `-`. */
export const PATH_SEGMENT_PATTERN = '[A-Za-z0-9._-]+';
