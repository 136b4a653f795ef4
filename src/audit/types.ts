/**
 * Outcomes of a step (or of a whole run) that the audit trail records. `force-closed` ends a
 * stuck rotation that an admin closed without touching any provider or store.
 */
export const AUDIT_OUTCOMES = ['started', 'succeeded', 'failed', 'retrying', 'skipped', 'resumed', 'requested', 'force-closed'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** The step name of events about a whole run rather than one of its steps. */
export const RUN_STEP = 'run';

/** One audited fact: a step's start or outcome, or a run-level event. It carries ids and fingerprints, never values. */
export interface AuditEvent {
  runId: string;
  rotationId?: string;
  environment: string;
  credentialId?: string;
  provider?: string;
  /** A step name from `STEPS`, or `'run'` for run-level events. */
  step: string;
  outcome: AuditOutcome;
  /** The principal that requested the work: an operator, a token's subject, a scanner. */
  actor: string;
  /** The channel the request came through: api, cli, schedule or webhook. */
  trigger: string;
  oldKeyId?: string | null;
  newKeyId?: string | null;
  /** HMAC-SHA256 fingerprints of values, by field name. Never the values themselves. */
  fingerprints?: Record<string, string>;
  error?: { code: string; message: string; retryable: boolean };
  detail?: Record<string, string | number | boolean | null>;
}

/** An event as stored: one JSON line of the trail, linked to the record before it. */
export interface AuditRecord extends AuditEvent {
  /** Position in the trail, starting at 1 with no gaps. */
  seq: number;
  /** Time of the append, as an ISO 8601 timestamp. */
  time: string;
  /** The `hash` of the previous record, or `GENESIS_HASH` for the first. */
  prev: string;
  /** SHA-256 (hex) of the canonical JSON of the record without `hash`. */
  hash: string;
}

export interface AuditSink {
  /** Appends one record for `event`. Throws if the event is malformed or contains a secret value. */
  append(event: AuditEvent): Promise<void>;
  /** Waits for the appends in progress. Appends after this throw. */
  close(): Promise<void>;
}

/**
 * Result of checking a trail's hash chain. `records` counts the valid records, which on failure
 * are the ones before `line` (1-based), the first line that breaks the chain.
 */
export type AuditVerification =
  | { ok: true; records: number }
  | { ok: false; records: number; line: number; reason: string };
