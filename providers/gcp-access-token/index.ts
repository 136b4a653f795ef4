export { createGcpAccessTokenProvider, GcpAccessTokenProvider } from './adapter.js';
export { DEFAULT_LIFETIME_SECONDS, GCP_ACCESS_TOKEN_KIND } from './constants.js';
export { GCP_ACCESS_TOKEN_PARAMS_SCHEMA, type GcpAccessTokenParams } from './schema.js';
