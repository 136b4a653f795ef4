import { createHash } from 'node:crypto';

/** The `prev` value of the first record of a trail. */
export const GENESIS_HASH = '0'.repeat(64);

const HASH_PATTERN = /^[0-9a-f]{64}$/;

/**
 * Serialises a JSON value with object keys sorted at every level, so that equal records give
 * equal text whatever order their keys were written in. Keys whose value is undefined are
 * skipped, as JSON.stringify skips them.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Computes a record's `hash`: SHA-256 (hex) over the canonical JSON of every field but `hash`. */
export function hashRecord(record: Record<string, unknown>): string {
  const { hash: _hash, ...rest } = record;
  return createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex');
}

/** The chain position that the next record must continue from. */
export interface ChainHead {
  seq: number;
  hash: string;
}

export const EMPTY_CHAIN: ChainHead = { seq: 0, hash: GENESIS_HASH };

/**
 * Checks one line of a trail against the record before it. Returns the record's chain head, or
 * the reason the line breaks the chain. The checks run from the cheapest to the costliest, so a
 * deleted or moved record is reported as such before its hash is computed.
 */
export function checkRecordLine(line: string, previous: ChainHead): ChainHead | { reason: string } {
  if (line.trim() === '') return { reason: 'empty line' };

  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return { reason: 'not valid JSON (a truncated or damaged line)' };
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    return { reason: 'not a JSON object' };
  }

  const { seq, prev, hash, time } = record as Record<string, unknown>;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return { reason: 'seq is missing or not an integer' };
  if (typeof time !== 'string') return { reason: 'time is missing' };
  if (typeof prev !== 'string' || !HASH_PATTERN.test(prev)) return { reason: 'prev is missing or not a SHA-256 hex digest' };
  if (typeof hash !== 'string' || !HASH_PATTERN.test(hash)) return { reason: 'hash is missing or not a SHA-256 hex digest' };

  const expectedSeq = previous.seq + 1;
  if (seq !== expectedSeq) {
    return { reason: `seq is ${seq} but ${expectedSeq} was expected, so a record was deleted, inserted or moved` };
  }
  if (prev !== previous.hash) {
    return { reason: 'prev does not match the hash of the previous record, so a record before it was deleted, replaced or moved' };
  }
  if (hashRecord(record as Record<string, unknown>) !== hash) {
    return { reason: 'hash does not match the record content, so the record was edited' };
  }
  return { seq, hash };
}

