export { GcpAuth, type TokenExchange } from './auth.js';
export * from './constants.js';
export { gcpErrorCode, googleApiErrorOf, toRekeyError, type GoogleApiError } from './errors.js';
export { parseServiceAccountKeyFile, signAssertion, type ServiceAccountKeyFile } from './key-file.js';
export { requestJson } from './rest.js';
export { gapicEndpointOptions, readGcpSettings, readMilliseconds, type GapicEndpointOptions, type GcpAdminCredentials, type GcpSettings } from './settings.js';
