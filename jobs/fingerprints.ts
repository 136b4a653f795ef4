import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { SecretValue } from '../src/secret.js';

/** The credential version a fingerprint or a public key id points to. */
export interface IndexEntry {
  environment: string;
  credentialId: string;
  keyId: string;
  /** The material field the value was in, or null for a key id. */
  field: string | null;
  recordedAt: string;
}

/**
 * The fingerprint index: keyed hashes (HMAC-SHA256 with the fingerprint key) of every value
 * rekey staged and of every public key id it saw, each pointing to the credential version it
 * belongs to. A leaked value or key id reported by a scanner is matched here. Redis only ever
 * receives the hashes: a candidate string is hashed before it is looked up, so even a value that is
 * not in the index never reaches a Redis command, its slow log or its monitor stream.
 */
export class FingerprintIndex {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly key: Buffer,
  ) {}

  private valueKey(fingerprint: string): string {
    return `${this.prefix}:fingerprint:value:${fingerprint}`;
  }

  private keyIdKey(keyId: string): string {
    return `${this.prefix}:fingerprint:keyid:${createHmac('sha256', this.key).update(keyId, 'utf8').digest('hex')}`;
  }

  /** Records the fingerprints of a version's secret fields, computed by the engine. */
  async recordValues(entry: Omit<IndexEntry, 'field' | 'recordedAt'>, fingerprints: Record<string, string>): Promise<void> {
    const recordedAt = new Date().toISOString();
    for (const [field, fingerprint] of Object.entries(fingerprints)) {
      await this.redis.set(this.valueKey(fingerprint), JSON.stringify({ ...entry, field, recordedAt } satisfies IndexEntry));
    }
  }

  /** Records a public key id (an AWS access key id) of a credential. */
  async recordKeyId(entry: Omit<IndexEntry, 'field' | 'recordedAt'>): Promise<void> {
    const stored: IndexEntry = { ...entry, field: null, recordedAt: new Date().toISOString() };
    await this.redis.set(this.keyIdKey(entry.keyId), JSON.stringify(stored));
  }

  /** Finds the credential version a reported value or key id belongs to, if the index has it. */
  async lookup(candidate: SecretValue): Promise<IndexEntry | null> {
    const byValue = await this.redis.get(this.valueKey(candidate.fingerprint(this.key)));
    if (byValue !== null) return JSON.parse(byValue) as IndexEntry;
    const byKeyId = await this.redis.get(this.keyIdKey(candidate.reveal()));
    return byKeyId === null ? null : (JSON.parse(byKeyId) as IndexEntry);
  }
}
