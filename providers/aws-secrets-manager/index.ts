export { AwsSecretsManagerStore, createAwsSecretsManagerStore } from './adapter.js';
export { AWS_SECRETS_MANAGER_KIND, KEY_ID_LABEL_PREFIX, PLACEHOLDER_SECRET_STRING } from './constants.js';
export { AWS_SECRETS_MANAGER_PARAMS_SCHEMA, type AwsSecretsManagerParams } from './schema.js';
