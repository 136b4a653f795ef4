import { createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { RekeyError } from '../../src/errors.js';
import { isErrorCode } from '../../src/fs-lock.js';
import { DIRECTORY_MODE, MASTER_KEY_BYTES, MASTER_KEY_ENV } from './constants.js';
import { createFileExclusive } from './files.js';

/** The key that encrypts the store file. */
export interface MasterKey {
  bytes: Buffer;
  /**
   * A short HMAC of a fixed label under the key. The store file records it, so that a wrong key
   * is reported as such instead of as a damaged file. It reveals nothing about the key.
   */
  id: string;
  /** Origin of the key for error messages: the environment variable or the key file. */
  source: string;
}

const KEY_ID_LABEL = 'rekey-file-store master key id';
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
/** 32 bytes in standard or URL-safe base64, with or without the one padding character. */
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;
/** Permission bits for group and others. A key file with any of them set is rejected. */
const SHARED_MODE_BITS = 0o077;

/** Returns the key in REKEY_MASTER_KEY, or null if the variable is unset or empty. */
export function masterKeyFromEnv(value: string | undefined): MasterKey | null {
  if (value === undefined || value === '') return null;
  return toMasterKey(parseKeyText(value, MASTER_KEY_ENV), MASTER_KEY_ENV);
}

/**
 * Reads the key file at `path`, or returns null if it does not exist. The file contains the key as
 * base64 or hex text, or as 32 raw bytes. Throws PRECONDITION_FAILED if group or others have any
 * access to the file, or if its content is not a 32-byte key.
 */
export async function readMasterKeyFile(path: string): Promise<MasterKey | null> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    if (isErrorCode(error, 'ENOENT')) return null;
    throw error;
  }

  try {
    const stats = await handle.stat();
    const source = `master key file ${path}`;
    if (!stats.isFile()) throw new RekeyError('PRECONDITION_FAILED', `${source} is not a regular file`);

    // Windows has no such permission bits, so the check would reject every file there.
    const mode = stats.mode & 0o777;
    if (process.platform !== 'win32' && (mode & SHARED_MODE_BITS) !== 0) {
      throw new RekeyError(
        'PRECONDITION_FAILED',
        `${source} has mode ${formatMode(mode)}, which gives group or others access to it. ` +
          `Run "chmod 600 ${path}" and try again.`,
      );
    }

    const content = await handle.readFile();
    const bytes = content.length === MASTER_KEY_BYTES ? Buffer.from(content) : parseKeyText(content.toString('utf8'), source);
    content.fill(0);
    return toMasterKey(bytes, source);
  } finally {
    await handle.close();
  }
}

/**
 * Creates the key file at `path` (mode 0600, directory 0700) with a random key, written as base64.
 * If another process created the file first, its key is read and returned instead.
 */
export async function createMasterKeyFile(path: string): Promise<MasterKey> {
  await fs.mkdir(dirname(path), { recursive: true, mode: DIRECTORY_MODE });
  const bytes = randomBytes(MASTER_KEY_BYTES);
  await createFileExclusive(path, `${bytes.toString('base64')}\n`);
  bytes.fill(0);

  const key = await readMasterKeyFile(path);
  if (key === null) throw new Error(`master key file ${path} disappeared right after it was created`);
  return key;
}

function parseKeyText(text: string, source: string): Buffer {
  const trimmed = text.trim();
  if (HEX_KEY.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (BASE64_KEY.test(trimmed)) {
    const bytes = Buffer.from(trimmed, 'base64');
    if (bytes.length === MASTER_KEY_BYTES) return bytes;
  }
  // The message gives the length only, because the text may be a real key with a typo.
  throw new RekeyError(
    'PRECONDITION_FAILED',
    `${source} is not a valid master key: expected ${MASTER_KEY_BYTES} bytes as base64 (44 characters) or hex ` +
      `(64 characters), got ${trimmed.length} characters. Generate a key with "openssl rand -base64 32".`,
  );
}

function toMasterKey(bytes: Buffer, source: string): MasterKey {
  const id = createHmac('sha256', bytes).update(KEY_ID_LABEL).digest('hex').slice(0, 16);
  return { bytes, id, source };
}

function formatMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
