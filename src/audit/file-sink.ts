import { promises as fs } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Env } from '../contracts.js';
import { withFileLock, type FileLockOptions } from '../fs-lock.js';
import { checkRecordLine, EMPTY_CHAIN, hashRecord, type ChainHead } from './chain.js';
import type { AuditEvent, AuditRecord, AuditSink } from './types.js';
import { validateAuditEvent } from './validate.js';

export const DEFAULT_AUDIT_FILE = '.rekey/audit.jsonl';

/** Size of the blocks read backwards from the end of the trail to find its last line. */
const TAIL_CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

export interface FileAuditSinkOptions {
  path: string;
  /** Bounds of the wait for the lock file `<path>.lock`. */
  lock?: FileLockOptions;
}

/**
 * Creates a sink that appends hash-chained JSON lines to the file at `options.path`, creating it
 * (mode 0600) and its directory on the first append.
 *
 * Each append takes the lock file `<path>.lock` and reads the file's last record under it, so
 * sinks in several processes, or several sinks in one process, extend a single chain. Every line
 * is flushed with fsync before `append` resolves.
 */
export function createFileAuditSink(options: FileAuditSinkOptions): AuditSink {
  const path = resolve(options.path);
  const lockPath = `${path}.lock`;
  let pending: Promise<unknown> = Promise.resolve();
  let closed = false;

  const write = async (event: AuditEvent): Promise<void> => {
    await fs.mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await withFileLock(lockPath, () => appendRecord(path, event), options.lock);
  };

  return {
    async append(event: AuditEvent): Promise<void> {
      if (closed) throw new Error(`audit sink for ${path} is closed`);
      validateAuditEvent(event);

      // Chained before the first await, so records land in the order of the calls.
      const appended = pending.then(() => write(event));
      pending = appended.catch(() => undefined);
      await appended;
    },

    async close(): Promise<void> {
      closed = true;
      await pending;
    },
  };
}

/** Creates the file sink at REKEY_AUDIT_FILE, or `.rekey/audit.jsonl` relative to the working directory. */
export function createAuditSinkFromEnv(env: Env): AuditSink {
  const path = env.REKEY_AUDIT_FILE === undefined || env.REKEY_AUDIT_FILE === '' ? DEFAULT_AUDIT_FILE : env.REKEY_AUDIT_FILE;
  return createFileAuditSink({ path });
}

/** Appends the record of `event` after the file's last record. The caller holds the lock. */
async function appendRecord(path: string, event: AuditEvent): Promise<void> {
  const handle = await fs.open(path, 'a+', 0o600);
  try {
    const tail = await readTail(handle, path);
    const unhashed = { seq: tail.head.seq + 1, time: new Date().toISOString(), ...event, prev: tail.head.hash };

    // The hash is computed over the record as it will be parsed back, so that verification,
    // which reads only the JSON, computes the same value.
    const stored = JSON.parse(JSON.stringify(unhashed)) as Omit<AuditRecord, 'hash'>;
    const record: AuditRecord = { ...stored, hash: hashRecord(stored) };
    const line = `${tail.endsWithNewline ? '' : '\n'}${JSON.stringify(record)}\n`;

    await handle.write(line);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface Tail {
  head: ChainHead;
  /** Whether the file is empty or ends with a newline, so that the next record can start right away. */
  endsWithNewline: boolean;
}

/**
 * Reads the chain head from the file's last line. Throws if that line is not a valid record, since
 * a record appended after it would extend a chain that verification already rejects.
 */
async function readTail(handle: fs.FileHandle, path: string): Promise<Tail> {
  const { size } = await handle.stat();
  if (size === 0) return { head: EMPTY_CHAIN, endsWithNewline: true };

  const last = await readLastLine(handle, size);
  const parsed = parseHead(last.text);
  if (parsed === null) {
    throw new Error(
      `cannot append to audit file ${path}: its last line is not a valid audit record. ` +
        'Run the audit verification to find the damage. Appends resume once the file ends with a valid record.',
    );
  }

  // The last record's own hash is checked too, because a record appended after an edited one
  // would hide the edit behind a link that looks valid.
  const check = checkRecordLine(last.text, { seq: parsed.seq - 1, hash: parsed.prev });
  if ('reason' in check) {
    throw new Error(`cannot append to audit file ${path}: its last record (seq ${parsed.seq}) is invalid: ${check.reason}`);
  }
  return { head: check, endsWithNewline: last.endsWithNewline };
}

function parseHead(text: string): { seq: number; prev: string } | null {
  try {
    const record = JSON.parse(text) as unknown;
    if (typeof record !== 'object' || record === null) return null;
    const { seq, prev } = record as Record<string, unknown>;
    return typeof seq === 'number' && typeof prev === 'string' ? { seq, prev } : null;
  } catch {
    return null;
  }
}

/** Reads the text after the file's last newline, ignoring one newline at the very end. */
async function readLastLine(handle: fs.FileHandle, size: number): Promise<{ text: string; endsWithNewline: boolean }> {
  let buffer = Buffer.alloc(0);
  let position = size;
  let endsWithNewline: boolean | null = null;

  while (position > 0) {
    const start = Math.max(0, position - TAIL_CHUNK_BYTES);
    const chunk = Buffer.alloc(position - start);
    await handle.read(chunk, 0, chunk.length, start);
    buffer = Buffer.concat([chunk, buffer]);
    position = start;
    endsWithNewline ??= buffer[buffer.length - 1] === NEWLINE;

    const lineEnd = endsWithNewline ? buffer.length - 1 : buffer.length;
    const lineStart = lineEnd === 0 ? -1 : buffer.lastIndexOf(NEWLINE, lineEnd - 1);
    if (lineStart >= 0 || position === 0) {
      return { text: buffer.subarray(lineStart + 1, lineEnd).toString('utf8'), endsWithNewline };
    }
  }
  return { text: '', endsWithNewline: endsWithNewline ?? true };
}
