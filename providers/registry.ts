import type { Env } from '../src/contracts.js';
import { providerEntry, Registry, storeEntry, type ProviderEntry, type StoreEntry } from '../src/registry.js';
import { AWS_IAM_ACCESS_KEY_KIND, AWS_IAM_ACCESS_KEY_PARAMS_SCHEMA, createAwsIamAccessKeyProvider } from './aws-iam-access-key/index.js';
import { AWS_SECRETS_MANAGER_KIND, AWS_SECRETS_MANAGER_PARAMS_SCHEMA, createAwsSecretsManagerStore } from './aws-secrets-manager/index.js';
import {
  AZURE_APP_CLIENT_SECRET_KIND, AZURE_APP_CLIENT_SECRET_PARAMS_SCHEMA, createAzureAppClientSecretProvider,
} from './azure-app-client-secret/index.js';
import { AZURE_KEY_VAULT_KIND, AZURE_KEY_VAULT_PARAMS_SCHEMA, createAzureKeyVaultStore } from './azure-key-vault/index.js';
import { createFileStore, FILE_STORE_KIND, paramsSchema as FILE_STORE_PARAMS_SCHEMA } from './file-store/index.js';
import { createGcpAccessTokenProvider, GCP_ACCESS_TOKEN_KIND, GCP_ACCESS_TOKEN_PARAMS_SCHEMA } from './gcp-access-token/index.js';
import { createGcpSecretManagerStore, GCP_SECRET_MANAGER_KIND, GCP_SECRET_MANAGER_PARAMS_SCHEMA } from './gcp-secret-manager/index.js';
import {
  createGcpServiceAccountKeyProvider, GCP_SERVICE_ACCOUNT_KEY_KIND, GCP_SERVICE_ACCOUNT_KEY_PARAMS_SCHEMA,
} from './gcp-service-account-key/index.js';
import { createGeneratedSecretProvider, GENERATED_SECRET_KIND, GENERATED_SECRET_PARAMS_SCHEMA } from './generated-secret/index.js';
import { createPostgresRolePasswordProvider, POSTGRES_ROLE_PASSWORD_KIND, POSTGRES_ROLE_PASSWORD_PARAMS_SCHEMA } from './postgres-role-password/index.js';
import { createRedisAclPasswordProvider, REDIS_ACL_PASSWORD_KIND, REDIS_ACL_PASSWORD_PARAMS_SCHEMA } from './redis-acl-password/index.js';
import {
  createVaultApproleSecretIdProvider, VAULT_APPROLE_SECRET_ID_KIND, VAULT_APPROLE_SECRET_ID_PARAMS_SCHEMA,
} from './vault-approle-secret-id/index.js';
import { createVaultKvStore, VAULT_KV_KIND, VAULT_KV_PARAMS_SCHEMA } from './vault-kv/index.js';

/** Every built-in credential kind. Adding a provider means adding its folder and one line here. */
export const PROVIDERS: readonly ProviderEntry[] = [
  providerEntry(AWS_IAM_ACCESS_KEY_KIND, AWS_IAM_ACCESS_KEY_PARAMS_SCHEMA, createAwsIamAccessKeyProvider),
  providerEntry(POSTGRES_ROLE_PASSWORD_KIND, POSTGRES_ROLE_PASSWORD_PARAMS_SCHEMA, createPostgresRolePasswordProvider),
  providerEntry(REDIS_ACL_PASSWORD_KIND, REDIS_ACL_PASSWORD_PARAMS_SCHEMA, createRedisAclPasswordProvider),
  providerEntry(VAULT_APPROLE_SECRET_ID_KIND, VAULT_APPROLE_SECRET_ID_PARAMS_SCHEMA, createVaultApproleSecretIdProvider),
  providerEntry(GENERATED_SECRET_KIND, GENERATED_SECRET_PARAMS_SCHEMA, () => createGeneratedSecretProvider()),
  providerEntry(AZURE_APP_CLIENT_SECRET_KIND, AZURE_APP_CLIENT_SECRET_PARAMS_SCHEMA, createAzureAppClientSecretProvider),
  providerEntry(GCP_SERVICE_ACCOUNT_KEY_KIND, GCP_SERVICE_ACCOUNT_KEY_PARAMS_SCHEMA, createGcpServiceAccountKeyProvider),
  providerEntry(GCP_ACCESS_TOKEN_KIND, GCP_ACCESS_TOKEN_PARAMS_SCHEMA, createGcpAccessTokenProvider),
];

/** Every built-in secret store kind. */
export const STORES: readonly StoreEntry[] = [
  storeEntry(FILE_STORE_KIND, FILE_STORE_PARAMS_SCHEMA, (env) => createFileStore(env)),
  storeEntry(AWS_SECRETS_MANAGER_KIND, AWS_SECRETS_MANAGER_PARAMS_SCHEMA, createAwsSecretsManagerStore),
  storeEntry(VAULT_KV_KIND, VAULT_KV_PARAMS_SCHEMA, createVaultKvStore),
  storeEntry(AZURE_KEY_VAULT_KIND, AZURE_KEY_VAULT_PARAMS_SCHEMA, createAzureKeyVaultStore),
  storeEntry(GCP_SECRET_MANAGER_KIND, GCP_SECRET_MANAGER_PARAMS_SCHEMA, createGcpSecretManagerStore),
];

export function createRegistry(env: Env): Registry {
  return new Registry(env, PROVIDERS, STORES);
}
