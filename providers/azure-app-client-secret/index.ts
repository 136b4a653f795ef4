export { AzureAppClientSecretProvider, createAzureAppClientSecretProvider } from './adapter.js';
export { AZURE_APP_CLIENT_SECRET_KIND, DEFAULT_VERIFY_POLICY, MINTED_DISPLAY_NAME_PREFIX } from './constants.js';
export { classifyPasswords, mintedDisplayName, secretLimitOf, type ApplicationView, type PasswordCredential } from './passwords.js';
export { AZURE_APP_CLIENT_SECRET_PARAMS_SCHEMA, type AzureAppClientSecretParams } from './schema.js';
