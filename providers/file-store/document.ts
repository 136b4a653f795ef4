import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { RekeyError } from '../../src/errors.js';
import { AUTH_TAG_BYTES, CIPHER, FORMAT_NAME, FORMAT_VERSION, IV_BYTES } from './constants.js';
import type { MasterKey } from './master-key.js';

/** One version of a secret. `value` is the plaintext, which exists only inside the encrypted document. */
export interface StoredVersion {
  keyId: string;
  rotationId: string;
  /** Number of the version within its secret: 1 for the first staged, one more for each later stage. */
  version: number;
  value: string;
  /** ISO 8601 timestamps. `promotedAt` is null while the version is pending. */
  stagedAt: string;
  promotedAt: string | null;
}

export interface StoredSecret {
  current: StoredVersion | null;
  pending: StoredVersion | null;
  previous: StoredVersion | null;
  /** The highest version number ever given out, discarded versions included, so that numbers are never reused. */
  lastVersion: number;
  createdAt: string;
  updatedAt: string;
}

/** The decrypted content of the store file: secrets by path. */
export type Secrets = Map<string, StoredSecret>;

/** The store file: a clear header and the AES-256-GCM ciphertext of the secrets, each binary field in base64. */
interface Envelope {
  format: typeof FORMAT_NAME;
  version: number;
  masterKeyId: string;
  iv: string;
  tag: string;
  ciphertext: string;
}

/**
 * Encrypts `secrets` under `key` with a fresh random IV and returns the store file's content.
 * The header fields are authenticated as additional data, so that a changed version or key id
 * fails authentication too.
 */
export function encryptSecrets(secrets: Secrets, key: MasterKey): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, key.bytes, iv, { authTagLength: AUTH_TAG_BYTES });
  cipher.setAAD(additionalData(FORMAT_VERSION, key.id));

  const plaintext = Buffer.from(JSON.stringify({ secrets: Object.fromEntries(secrets) }), 'utf8');
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  plaintext.fill(0);

  const envelope: Envelope = {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    masterKeyId: key.id,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  };
  return `${JSON.stringify(envelope)}\n`;
}

/**
 * Decrypts the content of the store file at `path`. Throws PRECONDITION_FAILED, with the fix in
 * the message, for a file of another format or version, a file written under another master
 * key, and a file that fails authentication.
 */
export function decryptSecrets(content: Buffer, key: MasterKey, path: string): Secrets {
  const envelope = parseEnvelope(content, path);
  if (envelope.masterKeyId !== key.id) {
    throw new RekeyError(
      'PRECONDITION_FAILED',
      `store file ${path} was encrypted with another master key (id ${envelope.masterKeyId}) than the one loaded ` +
        `from ${key.source} (id ${key.id}). Provide the master key the file was written with.`,
    );
  }

  const decipher = createDecipheriv(CIPHER, key.bytes, Buffer.from(envelope.iv, 'base64'), { authTagLength: AUTH_TAG_BYTES });
  decipher.setAAD(additionalData(envelope.version, envelope.masterKeyId));
  decipher.setAuthTag(Buffer.from(envelope.tag, 'base64'));
  let plaintext: Buffer;
  try {
    plaintext = Buffer.concat([decipher.update(Buffer.from(envelope.ciphertext, 'base64')), decipher.final()]);
  } catch (error) {
    throw new RekeyError(
      'PRECONDITION_FAILED',
      `store file ${path} failed authentication: it was modified or damaged after rekey wrote it. Restore it from a backup.`,
      { cause: error },
    );
  }

  try {
    return toSecrets(JSON.parse(plaintext.toString('utf8')), path);
  } finally {
    plaintext.fill(0);
  }
}

function parseEnvelope(content: Buffer, path: string): Envelope {
  let envelope: unknown;
  try {
    envelope = JSON.parse(content.toString('utf8'));
  } catch {
    envelope = null;
  }
  const fields = (typeof envelope === 'object' && envelope !== null ? envelope : {}) as Record<string, unknown>;
  if (fields.format !== FORMAT_NAME) {
    throw new RekeyError('PRECONDITION_FAILED', `file ${path} is not a rekey file store (no "format": "${FORMAT_NAME}" header)`);
  }
  if (fields.version !== FORMAT_VERSION) {
    throw new RekeyError(
      'PRECONDITION_FAILED',
      `store file ${path} has format version ${String(fields.version)}, but this rekey reads version ${FORMAT_VERSION} only`,
    );
  }
  for (const name of ['masterKeyId', 'iv', 'tag', 'ciphertext']) {
    if (typeof fields[name] !== 'string') {
      throw new RekeyError('PRECONDITION_FAILED', `store file ${path} is damaged: its header has no "${name}"`);
    }
  }
  return fields as unknown as Envelope;
}

function additionalData(version: number, masterKeyId: string): Buffer {
  return Buffer.from(`${FORMAT_NAME}/${version}/${masterKeyId}`, 'utf8');
}

/**
 * Turns the decrypted JSON into the secrets map. It came from this module and passed
 * authentication, so only the outer shape is checked.
 */
function toSecrets(document: unknown, path: string): Secrets {
  const secrets = (document as { secrets?: unknown } | null)?.secrets;
  if (typeof secrets !== 'object' || secrets === null || Array.isArray(secrets)) {
    throw new RekeyError('PRECONDITION_FAILED', `store file ${path} decrypted to a document without "secrets"`);
  }
  // A Map, not an object, so that a secret path such as "__proto__" stays an ordinary key.
  return new Map(Object.entries(secrets as Record<string, StoredSecret>));
}
