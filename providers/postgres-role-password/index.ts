export {
  PostgresRolePasswordProvider, alterRolePasswordStatement, buildScramVerifier, createPostgresRolePasswordProvider,
  keyIdOfVerifier, saltOfKeyId, scramSalt,
} from './adapter.js';
export { DEFAULT_ADMIN_URL_ENV, POSTGRES_ROLE_PASSWORD_KIND } from './constants.js';
export { POSTGRES_ROLE_PASSWORD_PARAMS_SCHEMA, type PostgresRolePasswordParams } from './schema.js';
