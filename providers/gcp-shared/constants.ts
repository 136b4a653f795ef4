/** Environment variables of rekey's own GCP identity and endpoints. */
export const GCP_CREDENTIALS_FILE_ENV = 'REKEY_GCP_CREDENTIALS_FILE';
export const GCP_USE_ADC_ENV = 'REKEY_GCP_USE_ADC';
export const GCP_IMPERSONATE_ENV = 'REKEY_GCP_IMPERSONATE_SERVICE_ACCOUNT';
export const GCP_TOKEN_URL_ENV = 'REKEY_GCP_TOKEN_URL';
export const GCP_TOKEN_INFO_URL_ENV = 'REKEY_GCP_TOKEN_INFO_URL';
export const GCP_IAM_ENDPOINT_ENV = 'REKEY_GCP_IAM_ENDPOINT';
export const GCP_IAM_CREDENTIALS_ENDPOINT_ENV = 'REKEY_GCP_IAM_CREDENTIALS_ENDPOINT';
export const GCP_SECRET_MANAGER_ENDPOINT_ENV = 'REKEY_GCP_SECRET_MANAGER_ENDPOINT';
export const GCP_CA_FILE_ENV = 'REKEY_GCP_CA_FILE';

/** Google's public endpoints, used when the matching variable is unset. */
export const DEFAULT_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const DEFAULT_TOKEN_INFO_URL = 'https://oauth2.googleapis.com/tokeninfo';
export const DEFAULT_IAM_ENDPOINT = 'https://iam.googleapis.com';
export const DEFAULT_IAM_CREDENTIALS_ENDPOINT = 'https://iamcredentials.googleapis.com';
export const DEFAULT_SECRET_MANAGER_ENDPOINT = 'https://secretmanager.googleapis.com';

/** The OAuth scope of rekey's admin calls and of the token that verify requests with a new key. */
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

/** The OAuth 2.0 grant type of a service-account JWT exchanged for an access token (RFC 7523). */
export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/**
 * Lifetime of the assertion rekey signs, in seconds. Google's token endpoint rejects an assertion
 * whose `exp` is more than one hour after its `iat`.
 */
export const ASSERTION_LIFETIME_SECONDS = 3600;

/** Lifetime that rekey requests for the rotator's impersonated access token, in seconds (Google's default maximum: 1 h). */
export const IMPERSONATED_TOKEN_LIFETIME_SECONDS = 3600;
