export { createFileStore, type FileStore, type FileStoreOptions, type SecretMetadata } from './adapter.js';
export {
  DEFAULT_MASTER_KEY_FILE, DEFAULT_STORE_FILE, FILE_STORE_KIND, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, STORE_FILE_ENV,
} from './constants.js';
export { paramsSchema, type FileStoreParams } from './schema.js';
