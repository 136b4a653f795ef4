import { constants, promises as fs } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Env, SecretStore, StagedVersion, StepContext, StoreDescription } from '../../src/contracts.js';
import { quoteError, RekeyError, isRekeyError } from '../../src/errors.js';
import { isErrorCode, withFileLock, type FileLockOptions } from '../../src/fs-lock.js';
import { SecretValue } from '../../src/secret.js';
import {
  DEFAULT_MASTER_KEY_FILE, DEFAULT_STORE_FILE, FILE_STORE_KIND, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, STORE_FILE_ENV,
  DIRECTORY_MODE,
} from './constants.js';
import { decryptSecrets, encryptSecrets, type Secrets, type StoredSecret } from './document.js';
import { readFileOrNull, writeFileAtomic } from './files.js';
import { createMasterKeyFile, masterKeyFromEnv, readMasterKeyFile, type MasterKey } from './master-key.js';
import { paramsSchema, validateParams, validatePath, type FileStoreParams } from './schema.js';
import { discardVersion, promoteVersion, stageVersion, type Transition } from './transitions.js';

/** Metadata of one secret in the store, without its value. */
export interface SecretMetadata {
  path: string;
  currentKeyId: string | null;
  /** Version number of the current version, null if the secret has none yet. */
  version: number | null;
  pendingRotationId: string | null;
  updatedAt: string;
}

/** The file store, with reads that the `SecretStore` contract leaves out, for consumers, tests and the demo. */
export interface FileStore extends SecretStore<FileStoreParams> {
  /** Absolute path of the encrypted store file. */
  readonly storeFile: string;
  /** Returns the value that consumers of `path` read now, or null if the path has no current version. */
  readCurrentValue(path: string): Promise<SecretValue | null>;
  /** Lists every secret's metadata, sorted by path. */
  listSecrets(): Promise<SecretMetadata[]>;
  close(): Promise<void>;
}

export interface FileStoreOptions {
  /** Bounds of the wait for the store's lock file. */
  lock?: FileLockOptions;
}

/**
 * Creates the encrypted file store configured by the environment:
 *
 * - REKEY_FILE_STORE: the store file (default `.rekey/secrets.enc`);
 * - REKEY_MASTER_KEY: the 32-byte key as base64 or hex. If it is unset, the key is read from
 *   REKEY_MASTER_KEY_FILE (default `.rekey/master.key`), which is created with mode 0600 on the
 *   first write.
 *
 * Relative paths resolve against the working directory. Throws PRECONDITION_FAILED at once if
 * REKEY_MASTER_KEY is set but is not a valid key.
 */
export function createFileStore(env: Env, options: FileStoreOptions = {}): FileStore {
  return new EncryptedFileStore(
    resolve(nonEmpty(env[STORE_FILE_ENV]) ?? DEFAULT_STORE_FILE),
    resolve(nonEmpty(env[MASTER_KEY_FILE_ENV]) ?? DEFAULT_MASTER_KEY_FILE),
    masterKeyFromEnv(env[MASTER_KEY_ENV]),
    options.lock,
  );
}

/**
 * Keeps every secret in one file, encrypted as a whole with AES-256-GCM. Writes take the lock file
 * `<store file>.lock`, read and decrypt the file, and replace it atomically, so writers in several
 * processes do not overwrite each other's changes. Reads take no lock, because a replacement is a rename
 * and a reader sees either the old file or the new one.
 */
class EncryptedFileStore implements FileStore {
  readonly kind = FILE_STORE_KIND;
  /** A local file behind a lock: the lock orders writers, so the limits only bound memory. */
  readonly callLimits = { concurrency: 64, perSecond: 10_000 };
  readonly paramsSchema = paramsSchema;
  readonly storeFile: string;
  readonly #masterKeyFile: string;
  readonly #lockFile: string;
  readonly #lockOptions: FileLockOptions | undefined;
  readonly #environmentKey: MasterKey | null;
  #fileKey: MasterKey | null = null;

  constructor(storeFile: string, masterKeyFile: string, environmentKey: MasterKey | null, lockOptions: FileLockOptions | undefined) {
    this.storeFile = storeFile;
    this.#masterKeyFile = masterKeyFile;
    this.#lockFile = `${storeFile}.lock`;
    this.#environmentKey = environmentKey;
    this.#lockOptions = lockOptions;
  }

  async check(params: FileStoreParams, ctx: StepContext): Promise<void> {
    validateParams(params);
    ctx.signal.throwIfAborted();
    try {
      await assertDirectoryWritable(dirname(this.storeFile), 'the store file');
      const key = await this.#loadKey({ create: false });
      if (key === null) {
        await assertDirectoryWritable(dirname(this.#masterKeyFile), 'the master key file');
      } else {
        await this.#readSecrets();
      }
    } catch (error) {
      if (isRekeyError(error)) throw error;
      throw new RekeyError('PRECONDITION_FAILED', `file store ${this.storeFile} is not usable: ${quoteError(error)}`, { cause: error });
    }
  }

  async stage(params: FileStoreParams, version: StagedVersion, ctx: StepContext): Promise<void> {
    const { path } = validateParams(params);
    ctx.signal.throwIfAborted();
    const changed = await this.#update(path, (secret, now) => stageVersion(secret, path, version, now));
    const fields = { store: this.kind, path, rotationId: version.rotationId, keyId: version.keyId };
    ctx.logger.debug(fields, changed ? 'stage: pending version written' : 'stage: version already staged, file unchanged');
  }

  async readPending(params: FileStoreParams, rotationId: string, ctx: StepContext): Promise<SecretValue | null> {
    const { path } = validateParams(params);
    ctx.signal.throwIfAborted();
    const pending = (await this.#readSecrets()).get(path)?.pending;
    return pending?.rotationId === rotationId ? SecretValue.fromString(pending.value) : null;
  }

  async promote(params: FileStoreParams, rotationId: string, ctx: StepContext): Promise<void> {
    const { path } = validateParams(params);
    ctx.signal.throwIfAborted();
    const changed = await this.#update(path, (secret, now) => promoteVersion(secret, path, rotationId, now));
    const fields = { store: this.kind, path, rotationId };
    ctx.logger.debug(fields, changed ? 'promote: pending version made current' : 'promote: version already current, file unchanged');
  }

  async discard(params: FileStoreParams, rotationId: string, ctx: StepContext): Promise<void> {
    const { path } = validateParams(params);
    ctx.signal.throwIfAborted();
    const changed = await this.#update(path, (secret, now) => discardVersion(secret, rotationId, now));
    const fields = { store: this.kind, path, rotationId };
    ctx.logger.debug(fields, changed ? 'discard: pending version removed' : 'discard: no pending version of the rotation, file unchanged');
  }

  async describe(params: FileStoreParams, ctx: StepContext): Promise<StoreDescription> {
    const { path } = validateParams(params);
    ctx.signal.throwIfAborted();
    const secret = (await this.#readSecrets()).get(path);
    return { currentKeyId: secret?.current?.keyId ?? null, pendingRotationId: secret?.pending?.rotationId ?? null };
  }

  async readCurrentValue(path: string): Promise<SecretValue | null> {
    validatePath(path);
    const current = (await this.#readSecrets()).get(path)?.current;
    return current ? SecretValue.fromString(current.value) : null;
  }

  async listSecrets(): Promise<SecretMetadata[]> {
    const secrets = await this.#readSecrets();
    const paths = [...secrets.keys()].sort();
    return paths.map((path) => {
      const secret = secrets.get(path) as StoredSecret;
      return {
        path,
        currentKeyId: secret.current?.keyId ?? null,
        version: secret.current?.version ?? null,
        pendingRotationId: secret.pending?.rotationId ?? null,
        updatedAt: secret.updatedAt,
      };
    });
  }

  /** Zeroes and drops the key read from the key file. A later call reads the file again. */
  async close(): Promise<void> {
    this.#fileKey?.bytes.fill(0);
    this.#fileKey = null;
  }

  /**
   * Applies `transition` to the secret at `path` under the lock and writes the file if the
   * transition changed something. Returns whether it did.
   */
  async #update(path: string, transition: (secret: StoredSecret | undefined, now: string) => Transition): Promise<boolean> {
    await fs.mkdir(dirname(this.storeFile), { recursive: true, mode: DIRECTORY_MODE });
    return withFileLock(this.#lockFile, async () => {
      // The key is created under the lock, so that no writer can create the store file between the
      // check that it does not exist yet and the creation of a key for it.
      const key = await this.#loadKey({ create: true });
      const content = await readFileOrNull(this.storeFile);
      const secrets: Secrets = content === null ? new Map() : decryptSecrets(content, key, this.storeFile);

      const next = transition(secrets.get(path), new Date().toISOString());
      if (next === null) return false;

      secrets.set(path, next);
      await writeFileAtomic(this.storeFile, encryptSecrets(secrets, key));
      return true;
    }, this.#lockOptions);
  }

  /** Reads and decrypts the store file without the lock. A missing file is an empty store. */
  async #readSecrets(): Promise<Secrets> {
    const content = await readFileOrNull(this.storeFile);
    if (content === null) return new Map();
    const key = await this.#loadKey({ create: false });
    // Null only if the store file was deleted since it was read.
    if (key === null) return new Map();
    return decryptSecrets(content, key, this.storeFile);
  }

  /**
   * Returns the master key: REKEY_MASTER_KEY, else the key file. With `create`, a missing key file
   * is created, unless the store file exists. A new key could not decrypt that file, so that case
   * throws PRECONDITION_FAILED instead. Without `create`, a missing key file returns null.
   */
  async #loadKey(options: { create: true }): Promise<MasterKey>;
  async #loadKey(options: { create: false }): Promise<MasterKey | null>;
  async #loadKey(options: { create: boolean }): Promise<MasterKey | null> {
    if (this.#environmentKey !== null) return this.#environmentKey;
    if (this.#fileKey !== null) return this.#fileKey;

    const key = await readMasterKeyFile(this.#masterKeyFile);
    if (key !== null) {
      this.#fileKey = key;
      return key;
    }

    if (await fileExists(this.storeFile)) {
      throw new RekeyError(
        'PRECONDITION_FAILED',
        `store file ${this.storeFile} exists, but its master key is missing: neither ${MASTER_KEY_ENV} nor the key file ` +
          `${this.#masterKeyFile} is there. Restore the key file or set ${MASTER_KEY_ENV}.`,
      );
    }
    if (!options.create) return null;

    this.#fileKey = await createMasterKeyFile(this.#masterKeyFile);
    return this.#fileKey;
  }
}

/**
 * Throws PRECONDITION_FAILED unless this process can create files in `directory`, or can create
 * `directory` itself because its nearest existing ancestor is a writable directory.
 */
async function assertDirectoryWritable(directory: string, purpose: string): Promise<void> {
  let candidate = directory;
  for (;;) {
    try {
      const stats = await fs.stat(candidate);
      if (!stats.isDirectory()) {
        throw new RekeyError('PRECONDITION_FAILED', `cannot create directory ${directory} for ${purpose}: ${candidate} is not a directory`);
      }
      break;
    } catch (error) {
      if (!isErrorCode(error, 'ENOENT') || dirname(candidate) === candidate) throw error;
      candidate = dirname(candidate);
    }
  }

  try {
    await fs.access(candidate, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new RekeyError('PRECONDITION_FAILED', `directory ${candidate} for ${purpose} is not writable: ${quoteError(error)}`, { cause: error });
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch (error) {
    if (isErrorCode(error, 'ENOENT')) return false;
    throw error;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
