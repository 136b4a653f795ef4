export { readVaultSettings, VaultTokenManager, type VaultAuthMethod, type VaultCallContext, type VaultSettings } from './auth.js';
export { createVaultClient, VaultClient, type VaultClientOptions } from './client.js';
export {
  ACCESSOR_NOT_FOUND_ERROR, CAS_MISMATCH_ERROR, DEFAULT_APPROLE_MOUNT, DEFAULT_K8S_JWT_FILE, DEFAULT_K8S_MOUNT, PATH_SEGMENT_PATTERN,
  VAULT_ADDR_ENV, VAULT_APPROLE_MOUNT_ENV, VAULT_CACERT_ENV, VAULT_K8S_JWT_FILE_ENV, VAULT_K8S_MOUNT_ENV, VAULT_K8S_ROLE_ENV,
  VAULT_NAMESPACE_ENV, VAULT_ROLE_ID_ENV, VAULT_SECRET_ID_ENV, VAULT_TOKEN_ENV,
} from './constants.js';
export { VaultApiError } from './http.js';
export type { KvMetadata, KvVersion, KvVersionMetadata, SecretIdInfo, VaultAuth, VaultHealth, VaultTokenInfo } from './responses.js';
