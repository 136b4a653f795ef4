import type { Env } from '../contracts.js';
import { createAuditSinkFromEnv, DEFAULT_AUDIT_FILE } from './file-sink.js';
import { readAuditFileRecords, type AuditPage, type AuditPageRequest } from './query.js';
import type { AuditSink, AuditVerification } from './types.js';
import { verifyAuditFile } from './verify.js';

/** The audit trail's location: a PostgreSQL table when a database URL is set, a JSONL file otherwise. */
export type AuditLocation =
  | { kind: 'postgres'; connectionString: string; table: string | undefined }
  | { kind: 'file'; path: string };

export function auditLocation(env: Env): AuditLocation {
  const connectionString = nonEmpty(env.REKEY_AUDIT_DATABASE_URL) ?? nonEmpty(env.DATABASE_URL);
  if (connectionString !== undefined) return { kind: 'postgres', connectionString, table: nonEmpty(env.REKEY_AUDIT_TABLE) };
  return { kind: 'file', path: nonEmpty(env.REKEY_AUDIT_FILE) ?? DEFAULT_AUDIT_FILE };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Describes the location for messages, without the database URL (it may carry a password). */
export function describeAuditLocation(location: AuditLocation): string {
  return location.kind === 'file' ? location.path : `PostgreSQL table ${location.table ?? 'rekey_audit'}`;
}

/**
 * Opens the audit sink the environment selects. The PostgreSQL sink opens asynchronously, so
 * appends wait for it; its driver loads only when a database is configured.
 */
export function createAuditSinkFor(env: Env): AuditSink {
  const location = auditLocation(env);
  if (location.kind === 'file') return createAuditSinkFromEnv(env);
  const opening = import('./postgres-sink.js').then(({ createPostgresAuditSink }) =>
    createPostgresAuditSink({ connectionString: location.connectionString, table: location.table }));
  // A failed open surfaces on the first append; this keeps it from being an unhandled rejection.
  opening.catch(() => undefined);
  return {
    async append(event) {
      await (await opening).append(event);
    },
    async close() {
      await (await opening.catch(() => null))?.close();
    },
  };
}

export async function readAuditPage(location: AuditLocation, request: AuditPageRequest): Promise<AuditPage> {
  if (location.kind === 'file') return readAuditFileRecords(location.path, request);
  const { readAuditRecords } = await import('./postgres-sink.js');
  return readAuditRecords({ connectionString: location.connectionString, table: location.table, ...request });
}

export async function verifyAudit(location: AuditLocation): Promise<AuditVerification> {
  if (location.kind === 'file') return verifyAuditFile(location.path);
  const { verifyAuditTable } = await import('./postgres-sink.js');
  return verifyAuditTable({ connectionString: location.connectionString, table: location.table });
}
