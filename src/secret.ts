import { createHmac, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A secret value (a password, a secret access key, a token). Its string, JSON and inspect forms
 * are redacted, so a value that slips into a log line, an error or a job payload shows as
 * "[redacted]" instead of leaking. Only `reveal()` returns the plaintext, for the one call that
 * needs it (the provider request or the store write).
 */
export class SecretValue {
  #bytes: Buffer;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  static fromString(value: string): SecretValue {
    return new SecretValue(Buffer.from(value, 'utf8'));
  }

  /** Generates a random value of `byteLength` bytes, encoded as base64url (no padding). */
  static generate(byteLength = 32): SecretValue {
    const raw = randomBytes(byteLength);
    const encoded = Buffer.from(raw.toString('base64url'), 'utf8');
    raw.fill(0);
    return new SecretValue(encoded);
  }

  reveal(): string {
    return this.#bytes.toString('utf8');
  }

  /** Overwrites the bytes this object holds; copies already handed out by `reveal()` remain. */
  wipe(): void {
    this.#bytes.fill(0);
  }

  /** Computes a keyed fingerprint (HMAC-SHA256, hex) that identifies the value without exposing it. */
  fingerprint(key: Buffer): string {
    return createHmac('sha256', key).update(this.#bytes).digest('hex');
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/**
 * The material a replacement consists of: its public key id (an access key id, a password
 * fingerprint) and the fields that a consumer reads from a store. Secret fields are
 * `SecretValue`s; the others (user names, key ids, hosts) are plain strings.
 */
export interface Material {
  keyId: string;
  fields: Record<string, string | SecretValue>;
}

/** Renders material as the JSON document that a store keeps, with secret fields revealed. */
export function renderMaterial(material: Material): SecretValue {
  const plain: Record<string, string> = {};
  for (const [name, value] of Object.entries(material.fields)) {
    plain[name] = typeof value === 'string' ? value : value.reveal();
  }
  return SecretValue.fromString(JSON.stringify(plain));
}

/**
 * Parses a stored JSON document back into material. `secretFields` names the fields to wrap;
 * every other field stays a plain string.
 */
export function parseMaterial(keyId: string, document: SecretValue, secretFields: readonly string[]): Material {
  const parsed: unknown = JSON.parse(document.reveal());
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(`stored material for key ${keyId} is not a JSON object`);
  }
  const fields: Record<string, string | SecretValue> = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof value !== 'string') continue;
    fields[name] = secretFields.includes(name) ? SecretValue.fromString(value) : value;
  }
  return { keyId, fields };
}

/** Returns a secret field of `material`, or throws if it is missing or not secret. */
export function secretField(material: Material, name: string): SecretValue {
  const value = material.fields[name];
  if (!(value instanceof SecretValue)) {
    throw new TypeError(`material for key ${material.keyId} has no secret field "${name}"`);
  }
  return value;
}

/** Returns a plain field of `material`, or throws if it is missing or secret. */
export function plainField(material: Material, name: string): string {
  const value = material.fields[name];
  if (typeof value !== 'string') {
    throw new TypeError(`material for key ${material.keyId} has no plain field "${name}"`);
  }
  return value;
}
