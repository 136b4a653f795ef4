import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Roles in increasing order of power; each includes the ones before it. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function roleAllows(granted: Role, required: Role): boolean {
  return ROLES.indexOf(granted) >= ROLES.indexOf(required);
}

/** An API token as stored: its SHA-256, never the token itself. */
export interface StoredToken {
  id: string;
  /** SHA-256 (hex) of the whole token string. */
  sha256: string;
  role: Role;
  /** Environments the token may act on; null for all. */
  environments: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  description: string;
}

interface TokenFile {
  tokens: StoredToken[];
}

/** Tokens look like `rk_<id>_<secret>`: the id finds the stored hash without a scan. */
const TOKEN_PATTERN = /^rk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export type TokenCheck =
  | { status: 'valid'; token: StoredToken }
  | { status: 'expired'; token: StoredToken }
  | { status: 'unknown' };

export interface CreateTokenOptions {
  role: Role;
  environments: string[] | null;
  /** Lifetime from now; null for a token that never expires. */
  expiresInMs: number | null;
  description: string;
}

/**
 * Storage of API tokens, as hashes only. The file store returns results synchronously and the
 * PostgreSQL store returns promises, so callers await either.
 */
export interface TokenStore {
  /** Checks a presented token in constant time against the stored hash of its id. */
  check(presented: string, now?: Date): TokenCheck | Promise<TokenCheck>;
  list(): StoredToken[] | Promise<StoredToken[]>;
  /** Creates a token, stores its hash and returns the token: the only time it is ever shown. */
  create(options: CreateTokenOptions): { token: string; stored: StoredToken } | Promise<{ token: string; stored: StoredToken }>;
  /** Removes a token by id; returns false if there was none. */
  revoke(id: string): boolean | Promise<boolean>;
  close?(): Promise<void>;
}

/** A token store whose methods all return promises, with connections to close. */
export interface AsyncTokenStore extends TokenStore {
  check(presented: string, now?: Date): Promise<TokenCheck>;
  list(): Promise<StoredToken[]>;
  create(options: CreateTokenOptions): Promise<{ token: string; stored: StoredToken }>;
  revoke(id: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Returns the id part of a presented token, or undefined if it does not have the token format. */
export function tokenId(presented: string): string | undefined {
  return TOKEN_PATTERN.exec(presented)?.[1];
}

/** Generates a new token and the record of it to store. The token itself is not part of the record. */
export function mintToken(options: CreateTokenOptions, now: Date = new Date()): { token: string; stored: StoredToken } {
  const id = randomBytes(6).toString('hex');
  const token = `rk_${id}_${randomBytes(32).toString('base64url')}`;
  const stored: StoredToken = {
    id,
    sha256: sha256(token).toString('hex'),
    role: options.role,
    environments: options.environments,
    createdAt: now.toISOString(),
    expiresAt: options.expiresInMs === null ? null : new Date(now.getTime() + options.expiresInMs).toISOString(),
    description: options.description,
  };
  return { token, stored };
}

/**
 * Compares a presented token with a stored record of the same id: constant time over the
 * SHA-256 digests, then the expiry.
 */
export function checkAgainstStored(presented: string, stored: StoredToken | undefined, now: Date): TokenCheck {
  if (stored === undefined) return { status: 'unknown' };
  const expected = Buffer.from(stored.sha256, 'hex');
  const actual = sha256(presented);
  if (expected.length !== actual.length || !timingSafeEqual(actual, expected)) return { status: 'unknown' };
  if (stored.expiresAt !== null && Date.parse(stored.expiresAt) <= now.getTime()) return { status: 'expired', token: stored };
  return { status: 'valid', token: stored };
}

/**
 * API tokens kept as hashes in a JSON file (mode 0600). The file is read again whenever it
 * changes, so a token created or removed with the CLI takes effect without a restart.
 */
export class TokenFileStore implements TokenStore {
  /** The file's identity when it was read: a revoke that keeps the mtime still changes size or inode. */
  #loadedVersion = '';
  #tokens = new Map<string, StoredToken>();

  constructor(readonly path: string) {}

  #refresh(): void {
    if (!existsSync(this.path)) {
      this.#tokens.clear();
      this.#loadedVersion = '';
      return;
    }
    const stats = statSync(this.path);
    const version = `${stats.mtimeMs}:${stats.size}:${stats.ino}:${stats.ctimeMs}`;
    if (version === this.#loadedVersion) return;
    const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as TokenFile;
    this.#tokens = new Map(parsed.tokens.map((token) => [token.id, token]));
    this.#loadedVersion = version;
  }

  /** Checks a presented token in constant time against the stored hash of its id. */
  check(presented: string, now: Date = new Date()): TokenCheck {
    const id = tokenId(presented);
    if (id === undefined) return { status: 'unknown' };
    this.#refresh();
    return checkAgainstStored(presented, this.#tokens.get(id), now);
  }

  list(): StoredToken[] {
    this.#refresh();
    return [...this.#tokens.values()];
  }

  /** Creates a token, stores its hash and returns the token: the only time it is ever shown. */
  create(options: CreateTokenOptions): { token: string; stored: StoredToken } {
    const created = mintToken(options);
    this.#write([...this.list(), created.stored]);
    return created;
  }

  /** Removes a token by id; returns false if there was none. */
  revoke(id: string): boolean {
    const tokens = this.list();
    const remaining = tokens.filter((token) => token.id !== id);
    if (remaining.length === tokens.length) return false;
    this.#write(remaining);
    return true;
  }

  #write(tokens: StoredToken[]): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writeFileSync(this.path, `${JSON.stringify({ tokens } satisfies TokenFile, null, 2)}\n`, { mode: 0o600 });
    chmodSync(this.path, 0o600);
    this.#loadedVersion = '';
  }
}
