import { createHash } from 'node:crypto';
import pg from 'pg';
import {
  checkAgainstStored,
  mintToken,
  ROLES,
  tokenId,
  type CreateTokenOptions,
  type Role,
  type StoredToken,
  type AsyncTokenStore,
  type TokenCheck,
} from './tokens.js';

export const DEFAULT_TOKEN_TABLE = 'rekey_api_tokens';

export interface PostgresTokenStoreOptions {
  connectionString: string;
  /** Table name; without `schema` it is created in the schema that `current_schema()` returns. */
  table?: string;
  schema?: string;
  /** Receives errors of idle pool connections, which no caller awaits. */
  onIdleError?: (error: Error) => void;
}

export interface PostgresTokenStore extends AsyncTokenStore {
  /** The schema-qualified, quoted table name, such as `"public"."rekey_api_tokens"`. */
  readonly table: string;
}

/** NAMEDATALEN - 1 in a default PostgreSQL build. PostgreSQL silently truncates longer identifiers. */
const MAX_IDENTIFIER_BYTES = 63;
const IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CONNECT_TIMEOUT_MS = 10_000;
/** Bounds every token query, so a stuck database fails a request instead of holding it. */
const QUERY_TIMEOUT_MS = 10_000;
/** Each API process checks one token per request; a few connections are plenty. */
const POOL_SIZE = 4;
const COLUMNS = 'id, sha256, role, environments, created_at, expires_at, description';

interface TokenRow {
  id: string;
  sha256: Buffer;
  role: string;
  environments: string[] | null;
  created_at: Date;
  expires_at: Date | null;
  description: string;
}

/**
 * Connects to PostgreSQL, creates the token table if it is missing, and returns a token store
 * on it. The table contains the SHA-256 of each token, never the token. A token created or revoked
 * by one process is seen by every other process at its next check, since each check reads the row.
 */
export async function createPostgresTokenStore(options: PostgresTokenStoreOptions): Promise<PostgresTokenStore> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    max: POOL_SIZE,
    application_name: 'rekey-tokens',
  });
  // An idle connection that the server closes must not crash the process. The next query opens
  // a new one and reports its own error.
  pool.on('error', (error) => options.onIdleError?.(error));

  let table: string;
  try {
    table = await ensureTokenTable(pool, options.table ?? DEFAULT_TOKEN_TABLE, options.schema);
  } catch (error) {
    await pool.end();
    throw error;
  }

  let ended: Promise<void> | undefined;
  return {
    table,

    async check(presented: string, now: Date = new Date()): Promise<TokenCheck> {
      const id = tokenId(presented);
      if (id === undefined) return { status: 'unknown' };
      const result = await pool.query<TokenRow>(`SELECT ${COLUMNS} FROM ${table} WHERE id = $1`, [id]);
      const row = result.rows[0];
      return checkAgainstStored(presented, row === undefined ? undefined : toStoredToken(row), now);
    },

    async list(): Promise<StoredToken[]> {
      const result = await pool.query<TokenRow>(`SELECT ${COLUMNS} FROM ${table} ORDER BY created_at, id`);
      return result.rows.map(toStoredToken);
    },

    async create(createOptions: CreateTokenOptions): Promise<{ token: string; stored: StoredToken }> {
      const created = mintToken(createOptions);
      const { stored } = created;
      await pool.query(
        `INSERT INTO ${table} (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [stored.id, Buffer.from(stored.sha256, 'hex'), stored.role, stored.environments, stored.createdAt, stored.expiresAt, stored.description],
      );
      return created;
    },

    async revoke(id: string): Promise<boolean> {
      const result = await pool.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
      return result.rowCount === 1;
    },

    async close(): Promise<void> {
      ended ??= pool.end();
      await ended;
    },
  };
}

/** Creates the token table if it is missing and returns its quoted, schema-qualified name. */
async function ensureTokenTable(pool: pg.Pool, name: string, schema: string | undefined): Promise<string> {
  for (const [what, identifier] of [['table', name], ['schema', schema]] as const) {
    if (identifier !== undefined && (!IDENTIFIER_PATTERN.test(identifier) || identifier.length > MAX_IDENTIFIER_BYTES)) {
      throw new TypeError(`invalid token ${what} name "${identifier}": expected 1 to ${MAX_IDENTIFIER_BYTES} letters, digits or underscores, not starting with a digit`);
    }
  }

  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    let resolvedSchema = schema;
    if (resolvedSchema === undefined) {
      const result = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
      resolvedSchema = result.rows[0]?.schema ?? undefined;
      if (resolvedSchema === undefined) throw new Error(`cannot place token table "${name}": no schema of the search_path exists, so pass the schema option`);
    }
    const table = `${pg.escapeIdentifier(resolvedSchema)}.${pg.escapeIdentifier(name)}`;

    // CREATE TABLE IF NOT EXISTS fails with a unique violation when another session creates the
    // same table at the same moment, so creation is serialised by a lock on the table's name.
    const lockKey = createHash('sha256').update(`rekey-tokens:${resolvedSchema}.${name}`, 'utf8').digest().readBigInt64BE(0).toString();
    // A role with only row privileges on an existing table must not need CREATE on the schema.
    const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [table]);
    if ((exists.rows[0]?.oid ?? null) !== null) return table;

    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey]);
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${table} (
        id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{12}$'),
        sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32),
        role text NOT NULL CHECK (role IN (${ROLES.map((role) => pg.escapeLiteral(role)).join(', ')})),
        environments text[],
        created_at timestamptz NOT NULL,
        expires_at timestamptz,
        description text NOT NULL
      )`);
    await client.query('COMMIT');
    return table;
  } catch (error) {
    broken = error instanceof Error ? error : new Error(String(error));
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release(broken);
  }
}

function toStoredToken(row: TokenRow): StoredToken {
  if (!(ROLES as readonly string[]).includes(row.role)) throw new Error(`token ${row.id} has the unknown role "${row.role}"`);
  return {
    id: row.id,
    sha256: row.sha256.toString('hex'),
    role: row.role as Role,
    environments: row.environments,
    createdAt: row.created_at.toISOString(),
    expiresAt: row.expires_at === null ? null : row.expires_at.toISOString(),
    description: row.description,
  };
}
