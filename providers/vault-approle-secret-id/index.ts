export { createVaultApproleSecretIdProvider, VaultApproleSecretIdProvider } from './adapter.js';
export { DEFAULT_MOUNT, VAULT_APPROLE_SECRET_ID_KIND, VERIFY_POLICY } from './constants.js';
export { VAULT_APPROLE_SECRET_ID_PARAMS_SCHEMA, type VaultApproleSecretIdParams } from './schema.js';
