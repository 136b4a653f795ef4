import type { Env } from '../contracts.js';
import { TokenFileStore, type AsyncTokenStore, type CreateTokenOptions, type StoredToken, type TokenCheck, type TokenStore } from './tokens.js';

export const DEFAULT_TOKENS_FILE = '.rekey/tokens.json';

/**
 * Location of the API tokens. An explicit REKEY_TOKENS_FILE wins. Otherwise a database URL
 * (REKEY_TOKENS_DATABASE_URL, then DATABASE_URL) selects a PostgreSQL table, and without one the
 * default token file is used.
 */
export type TokenStoreLocation =
  | { kind: 'postgres'; connectionString: string; table: string | undefined }
  | { kind: 'file'; path: string };

export function tokenStoreLocation(env: Env): TokenStoreLocation {
  const file = nonEmpty(env.REKEY_TOKENS_FILE);
  if (file !== undefined) return { kind: 'file', path: file };
  const connectionString = nonEmpty(env.REKEY_TOKENS_DATABASE_URL) ?? nonEmpty(env.DATABASE_URL);
  if (connectionString !== undefined) return { kind: 'postgres', connectionString, table: nonEmpty(env.REKEY_TOKENS_TABLE) };
  return { kind: 'file', path: DEFAULT_TOKENS_FILE };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Describes the location for messages, without the database URL (it may carry a password). */
export function describeTokenStoreLocation(location: TokenStoreLocation): string {
  return location.kind === 'file' ? `token file ${location.path}` : `PostgreSQL table ${location.table ?? 'rekey_api_tokens'}`;
}

/** Opens the store at `location`. The pg driver loads only when a database is configured. */
export async function openTokenStore(location: TokenStoreLocation, onIdleError?: (error: Error) => void): Promise<TokenStore> {
  if (location.kind === 'file') return new TokenFileStore(location.path);
  const { createPostgresTokenStore } = await import('./token-store-postgres.js');
  return createPostgresTokenStore({ connectionString: location.connectionString, table: location.table, onIdleError });
}

/** The token store could not be opened or read; the request that needed it cannot be authenticated. */
export class TokenStoreUnavailableError extends Error {
  constructor(location: TokenStoreLocation, cause: unknown) {
    super(`the ${describeTokenStoreLocation(location)} could not be read: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'TokenStoreUnavailableError';
  }
}

/**
 * Returns the store the environment selects, opened on first use. A failed open is not kept:
 * the next call tries again, so the API recovers once the database is back without a restart.
 * Every failure is thrown as a TokenStoreUnavailableError.
 */
export function tokenStoreFor(env: Env, onIdleError?: (error: Error) => void): AsyncTokenStore {
  const location = tokenStoreLocation(env);
  let opening: Promise<TokenStore> | undefined;
  let closed = false;

  async function use<T>(work: (store: TokenStore) => T | Promise<T>): Promise<T> {
    if (closed) throw new TokenStoreUnavailableError(location, new Error('the store is closed'));
    opening ??= openTokenStore(location, onIdleError);
    const current = opening;
    let store: TokenStore;
    try {
      store = await current;
    } catch (error) {
      if (opening === current) opening = undefined;
      throw new TokenStoreUnavailableError(location, error);
    }
    try {
      return await work(store);
    } catch (error) {
      throw new TokenStoreUnavailableError(location, error);
    }
  }

  return {
    check: (presented: string, now?: Date): Promise<TokenCheck> => use((store) => store.check(presented, now)),
    list: (): Promise<StoredToken[]> => use((store) => store.list()),
    create: (options: CreateTokenOptions) => use((store) => store.create(options)),
    revoke: (id: string): Promise<boolean> => use((store) => store.revoke(id)),
    async close(): Promise<void> {
      closed = true;
      const store = await opening?.catch(() => undefined);
      await store?.close?.();
    },
  };
}
