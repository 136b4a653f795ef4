export { canonicalJson, GENESIS_HASH, hashRecord } from './chain.js';
export { createAuditSinkFromEnv, createFileAuditSink, DEFAULT_AUDIT_FILE, type FileAuditSinkOptions } from './file-sink.js';
export {
  MAX_AUDIT_PAGE_LIMIT, readAuditFileRecords, type AuditPage, type AuditPageRequest, type AuditRecordFilters,
} from './query.js';
export { AUDIT_OUTCOMES, RUN_STEP, type AuditEvent, type AuditOutcome, type AuditRecord, type AuditSink, type AuditVerification } from './types.js';
export { validateAuditEvent } from './validate.js';
export { verifyAuditFile } from './verify.js';
// The PostgreSQL sink is imported from './postgres-sink.js' directly. It loads the `pg` driver, and
// this module imports only Node built-ins and relative modules, so file sink users never load it.
