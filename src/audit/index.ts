export { canonicalJson, GENESIS_HASH, hashRecord } from './chain.js';
export { createAuditSinkFromEnv, createFileAuditSink, DEFAULT_AUDIT_FILE, type FileAuditSinkOptions } from './file-sink.js';
export { AUDIT_OUTCOMES, RUN_STEP, type AuditEvent, type AuditOutcome, type AuditRecord, type AuditSink, type AuditVerification } from './types.js';
export { validateAuditEvent } from './validate.js';
export { verifyAuditFile } from './verify.js';
