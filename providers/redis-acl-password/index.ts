export {
  RedisAclPasswordProvider, addPasswordArguments, createRedisAclPasswordProvider, keyIdOfHash, passwordHash,
  removePasswordArguments,
} from './adapter.js';
export { DEFAULT_ADMIN_URL_ENV, REDIS_ACL_PASSWORD_KIND } from './constants.js';
export { REDIS_ACL_PASSWORD_PARAMS_SCHEMA, type RedisAclPasswordParams } from './schema.js';
