import { randomBytes } from 'node:crypto';
import { constants, promises as fs, type Stats } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RekeyError } from './errors.js';

export interface FileLockOptions {
  /** Maximum time in milliseconds to wait for the lock before giving up with a TIMEOUT error. */
  timeoutMs?: number;
  /**
   * Age in milliseconds after which a lock file counts as left behind by a crashed process and
   * is removed. A holder refreshes its lock's mtime every quarter of this, so a live lock never
   * gets this old.
   */
  staleMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_STALE_MS = 10_000;
const MIN_RETRY_DELAY_MS = 5;
const MAX_RETRY_DELAY_MS = 100;

/**
 * Tails of the in-process queues, one per lock file. Callers in this process wait here instead
 * of polling the lock file, so only one of them at a time competes with other processes.
 */
const queues = new Map<string, Promise<void>>();

/**
 * Runs `task` while holding the lock file at `lockPath`, serialised against other callers in this
 * process and against other processes that lock the same path.
 *
 * The lock is a file created with O_EXCL that contains its owner (host, pid, a random token).
 * Waiting retries with a growing delay until `timeoutMs`, then throws a retryable TIMEOUT error.
 * A lock file whose mtime is older than `staleMs` is removed as the remains of a crashed holder.
 */
export async function withFileLock<T>(lockPath: string, task: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const key = resolve(lockPath);
  const previous = queues.get(key) ?? Promise.resolve();
  let release!: () => void;
  const current = new Promise<void>((resolveCurrent) => {
    release = resolveCurrent;
  });
  const tail = previous.then(() => current);
  queues.set(key, tail);

  try {
    await previous;
    return await holdFileLock(key, task, options);
  } finally {
    release();
    if (queues.get(key) === tail) queues.delete(key);
  }
}

async function holdFileLock<T>(lockPath: string, task: () => Promise<T>, options: FileLockOptions): Promise<T> {
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  const owner = await acquire(lockPath, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, staleMs);

  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.utimes(lockPath, now, now).catch(() => undefined);
  }, Math.max(1, Math.floor(staleMs / 4)));
  heartbeat.unref();

  try {
    return await task();
  } finally {
    clearInterval(heartbeat);
    await releaseIfOwned(lockPath, owner);
  }
}

/** Creates the lock file once its current holder has released it. Returns the content that identifies this owner. */
async function acquire(lockPath: string, timeoutMs: number, staleMs: number): Promise<string> {
  const owner = JSON.stringify({ host: hostname(), pid: process.pid, token: randomBytes(8).toString('hex') });
  const deadline = Date.now() + timeoutMs;
  let delay = MIN_RETRY_DELAY_MS;
  await fs.mkdir(dirname(lockPath), { recursive: true, mode: 0o700 });

  for (;;) {
    try {
      const handle = await fs.open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await handle.writeFile(owner);
      } finally {
        await handle.close();
      }
      return owner;
    } catch (error) {
      if (!isErrorCode(error, 'EEXIST')) throw error;
    }

    if (await removeIfStale(lockPath, staleMs)) continue;
    if (Date.now() >= deadline) {
      throw new RekeyError(
        'TIMEOUT',
        `timed out after ${timeoutMs} ms waiting for lock file ${lockPath}, which another process holds. ` +
          `If no rekey process is running, delete the file.`,
      );
    }
    await sleep(delay + Math.floor(Math.random() * delay));
    delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
  }
}

/**
 * Removes the lock file if its mtime is older than `staleMs` and returns whether it did. The file
 * is first renamed to a unique name, so that two waiters that both found it stale cannot both
 * delete it. If the renamed file turns out to be a fresh lock (its holder replaced the stale one
 * between the stat and the rename), it is linked back.
 */
async function removeIfStale(lockPath: string, staleMs: number): Promise<boolean> {
  const stats = await statOrNull(lockPath);
  if (stats === null) return true;
  if (Date.now() - stats.mtimeMs < staleMs) return false;

  const evicted = `${lockPath}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(lockPath, evicted);
  } catch (error) {
    if (isErrorCode(error, 'ENOENT')) return true;
    throw error;
  }

  const evictedStats = await fs.stat(evicted);
  if (Date.now() - evictedStats.mtimeMs < staleMs) {
    // NOTE: if a third process created a lock between the rename and this link, the fresh lock
    // that was renamed away is lost and two holders may overlap once. This needs three processes
    // contending at the moment a crashed holder's lock expires.
    await fs.link(evicted, lockPath).catch(() => undefined);
    await fs.unlink(evicted);
    return false;
  }
  await fs.unlink(evicted);
  return true;
}

/** Deletes the lock file, unless another process found it stale and has replaced it since. */
async function releaseIfOwned(lockPath: string, owner: string): Promise<void> {
  let content: string;
  try {
    content = await fs.readFile(lockPath, 'utf8');
  } catch (error) {
    if (isErrorCode(error, 'ENOENT')) return;
    throw error;
  }
  if (content === owner) await fs.unlink(lockPath).catch(() => undefined);
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await fs.stat(path);
  } catch (error) {
    if (isErrorCode(error, 'ENOENT')) return null;
    throw error;
  }
}

/** Returns whether `error` is a Node.js system error with the given `code` (ENOENT, EEXIST…). */
export function isErrorCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
