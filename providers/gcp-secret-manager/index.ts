export { createGcpSecretManagerStore, GcpSecretManagerStore } from './adapter.js';
export { GCP_SECRET_MANAGER_KIND, KEY_ID_ANNOTATION, PENDING_SECRET_SUFFIX, ROTATION_ID_ANNOTATION, VERSION_ANNOTATION } from './constants.js';
export { GCP_SECRET_MANAGER_PARAMS_SCHEMA, type GcpSecretManagerParams } from './schema.js';
