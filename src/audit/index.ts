export { canonicalJson, GENESIS_HASH, hashRecord } from './chain.js';
export { createAuditSinkFromEnv, createFileAuditSink, DEFAULT_AUDIT_FILE, type FileAuditSinkOptions } from './file-sink.js';
export {
  createPostgresAuditSink, DEFAULT_AUDIT_TABLE, ensureAuditSchema, readAuditRecords, verifyAuditTable,
  type AuditTableOptions, type AuditTableReadOptions, type PostgresAuditSink, type PostgresAuditSinkOptions,
} from './postgres-sink.js';
export {
  MAX_AUDIT_PAGE_LIMIT, readAuditFileRecords, type AuditPage, type AuditPageRequest, type AuditRecordFilters,
} from './query.js';
export { AUDIT_OUTCOMES, RUN_STEP, type AuditEvent, type AuditOutcome, type AuditRecord, type AuditSink, type AuditVerification } from './types.js';
export { validateAuditEvent } from './validate.js';
export { verifyAuditFile } from './verify.js';
