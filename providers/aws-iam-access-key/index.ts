export { AwsIamAccessKeyProvider, classifyAccessKeys, createAwsIamAccessKeyProvider } from './adapter.js';
export { AWS_IAM_ACCESS_KEY_KIND, DEFAULT_VERIFY_POLICY, MAX_ACCESS_KEYS_PER_USER } from './constants.js';
export { AWS_IAM_ACCESS_KEY_PARAMS_SCHEMA, type AwsIamAccessKeyParams } from './schema.js';
