import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isErrorCode } from '../../src/fs-lock.js';
import { FILE_MODE } from './constants.js';

/**
 * Replaces the file at `path` with `data` so that readers get either the old or the new content,
 * never a mix, even after a crash. The data goes to a temporary file in the same directory
 * (mode 0600), is flushed with fsync and is renamed over `path`. The directory is flushed last,
 * so that the rename survives a power loss.
 */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const temporary = temporaryPath(path);
  await writeNewFile(temporary, data);
  try {
    await fs.rename(temporary, path);
  } catch (error) {
    await fs.unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dirname(path));
}

/**
 * Creates the file at `path` with `data` unless it exists, and returns whether it did. Like
 * `writeFileAtomic`, it goes through a flushed temporary file, but it links instead of renaming,
 * so that of two processes that create the file at once, one wins and the other reads its
 * complete content.
 */
export async function createFileExclusive(path: string, data: string | Buffer): Promise<boolean> {
  const temporary = temporaryPath(path);
  await writeNewFile(temporary, data);
  try {
    await fs.link(temporary, path);
  } catch (error) {
    if (isErrorCode(error, 'EEXIST')) return false;
    throw error;
  } finally {
    await fs.unlink(temporary).catch(() => undefined);
  }
  await syncDirectory(dirname(path));
  return true;
}

/** Reads the file at `path`, or returns null if it does not exist. */
export async function readFileOrNull(path: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(path);
  } catch (error) {
    if (isErrorCode(error, 'ENOENT')) return null;
    throw error;
  }
}

function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

async function writeNewFile(path: string, data: string | Buffer): Promise<void> {
  const handle = await fs.open(path, 'wx', FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.unlink(path).catch(() => undefined);
    throw error;
  }
  await handle.close();
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await fs.open(path, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory, and there the rename is as durable as they make it.
    if (!isErrorCode(error, 'EINVAL') && !isErrorCode(error, 'EISDIR')) throw error;
  } finally {
    await handle.close();
  }
}
