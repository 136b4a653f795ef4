export { createVaultKvStore, VaultKvStore } from './adapter.js';
export {
  BASE_VERSION_KEY, DEFAULT_KV_MOUNT, KEY_ID_KEY, PENDING_PREFIX, ROTATION_ID_KEY, RUN_ID_KEY, VAULT_KV_KIND, VERSION_KEY,
} from './constants.js';
export { VAULT_KV_PARAMS_SCHEMA, type VaultKvParams } from './schema.js';
