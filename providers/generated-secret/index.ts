export { createGeneratedSecretProvider, GeneratedSecretProvider } from './adapter.js';
export { GENERATED_SECRET_KIND } from './constants.js';
export { GENERATED_SECRET_PARAMS_SCHEMA, type GeneratedSecretParams } from './schema.js';
