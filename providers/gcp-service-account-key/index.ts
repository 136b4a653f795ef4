export { classifyServiceAccountKeys, createGcpServiceAccountKeyProvider, GcpServiceAccountKeyProvider } from './adapter.js';
export { DEFAULT_VERIFY_POLICY, GCP_SERVICE_ACCOUNT_KEY_KIND, MAX_KEYS_PER_SERVICE_ACCOUNT } from './constants.js';
export { GCP_SERVICE_ACCOUNT_KEY_PARAMS_SCHEMA, type GcpServiceAccountKeyParams } from './schema.js';
