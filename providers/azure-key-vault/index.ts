export { AzureKeyVaultStore, createAzureKeyVaultStore } from './adapter.js';
export { AZURE_KEY_VAULT_KIND, PENDING_SUFFIX } from './constants.js';
export { AZURE_KEY_VAULT_PARAMS_SCHEMA, type AzureKeyVaultParams } from './schema.js';
