export { createAdminCredential, createSecretCredential, identityOptions, pipelineOptions, type IdentityOptions } from './credential.js';
export { aadstsCodes, identityErrorCode, quoteIdentityError } from './errors.js';
export { GraphApiError, GraphClient, retryAfterMs, type GraphCall } from './graph.js';
export { readAzureSettings, type AdminCredentialSettings, type AzureSettings } from './settings.js';
export { MICROSOFT_KEY_VAULT_SUFFIXES } from './constants.js';
