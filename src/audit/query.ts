import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { AuditRecord } from './types.js';

/** Largest page a caller may request, so one request cannot load a whole trail into memory. */
export const MAX_AUDIT_PAGE_LIMIT = 1000;

/** Conditions a record must meet to be returned. Every condition given must hold. */
export interface AuditRecordFilters {
  environment?: string;
  credentialId?: string;
  runId?: string;
  /** Earliest record time, inclusive. */
  from?: Date;
  /** Latest record time, exclusive. */
  to?: Date;
}

/** One page request: records after `afterSeq` (0 or absent: from the start) that match `filters`, at most `limit` of them. */
export interface AuditPageRequest {
  filters: AuditRecordFilters;
  limit: number;
  afterSeq?: number;
}

export interface AuditPage {
  /** Matching records, ordered by seq. */
  records: AuditRecord[];
  /** The `afterSeq` that requests the next page, or null when no matching record follows this page. */
  nextAfterSeq: number | null;
}

/** Throws a RangeError naming the first invalid value in `request`. */
export function validatePageRequest(request: AuditPageRequest): void {
  const { limit, afterSeq, filters } = request;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE_LIMIT) {
    throw new RangeError(`invalid audit page limit ${String(limit)}: expected an integer from 1 to ${MAX_AUDIT_PAGE_LIMIT}`);
  }
  if (afterSeq !== undefined && (!Number.isSafeInteger(afterSeq) || afterSeq < 0)) {
    throw new RangeError(`invalid audit page cursor afterSeq ${String(afterSeq)}: expected a non-negative integer`);
  }
  for (const name of ['from', 'to'] as const) {
    const bound = filters[name];
    if (bound !== undefined && (!(bound instanceof Date) || Number.isNaN(bound.getTime()))) {
      throw new RangeError(`invalid audit filter "${name}": expected a valid Date`);
    }
  }
}

/** Returns whether `record` meets every condition in `filters`. */
export function matchesAuditFilters(record: AuditRecord, filters: AuditRecordFilters): boolean {
  if (filters.environment !== undefined && record.environment !== filters.environment) return false;
  if (filters.credentialId !== undefined && record.credentialId !== filters.credentialId) return false;
  if (filters.runId !== undefined && record.runId !== filters.runId) return false;

  if (filters.from !== undefined || filters.to !== undefined) {
    const time = Date.parse(record.time);
    if (filters.from !== undefined && !(time >= filters.from.getTime())) return false;
    if (filters.to !== undefined && !(time < filters.to.getTime())) return false;
  }
  return true;
}

/**
 * Reads one page of the file trail at `path`, scanning it from the start. A missing file is an
 * empty trail, as the file sink creates it on the first append. Throws on a line that is not a
 * JSON record with a numeric seq, naming the line. verifyAuditFile explains the damage.
 *
 * This reads records as they are and does not check the hash chain.
 */
export async function readAuditFileRecords(path: string, request: AuditPageRequest): Promise<AuditPage> {
  validatePageRequest(request);
  const afterSeq = request.afterSeq ?? 0;
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  const records: AuditRecord[] = [];
  let lineNumber = 0;

  try {
    for await (const line of lines) {
      lineNumber += 1;
      const record = parseRecordLine(line, path, lineNumber);
      if (record.seq <= afterSeq || !matchesAuditFilters(record, request.filters)) continue;

      // One record past the limit shows whether a next page exists.
      records.push(record);
      if (records.length > request.limit) break;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], nextAfterSeq: null };
    throw error;
  } finally {
    lines.close();
    input.destroy();
  }
  return toPage(records, request.limit);
}

/** Cuts `records`, fetched with one extra record beyond `limit`, to a page and its cursor. */
export function toPage(records: AuditRecord[], limit: number): AuditPage {
  if (records.length <= limit) return { records, nextAfterSeq: null };
  const page = records.slice(0, limit);
  return { records: page, nextAfterSeq: page[page.length - 1]?.seq ?? null };
}

function parseRecordLine(line: string, path: string, lineNumber: number): AuditRecord {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    record = undefined;
  }
  const seq = (record as { seq?: unknown } | undefined)?.seq;
  if (typeof record !== 'object' || record === null || typeof seq !== 'number') {
    throw new Error(`cannot read audit file ${path}: line ${lineNumber} is not an audit record. Run the audit verification to find the damage.`);
  }
  return record as AuditRecord;
}
