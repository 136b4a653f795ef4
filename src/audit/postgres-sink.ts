import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { checkRecordLine, EMPTY_CHAIN, hashRecord, type ChainHead } from './chain.js';
import { toPage, validatePageRequest, type AuditPage, type AuditPageRequest } from './query.js';
import type { AuditEvent, AuditRecord, AuditSink, AuditVerification } from './types.js';
import { validateAuditEvent } from './validate.js';

export const DEFAULT_AUDIT_TABLE = 'rekey_audit';

/** Location of the audit table. Without `schema`, the table is in the schema that `current_schema()` returns for the connecting role. */
export interface AuditTableOptions {
  connectionString: string;
  table?: string;
  schema?: string;
}

export interface PostgresAuditSinkOptions extends AuditTableOptions {
  /** Receives errors of idle pool connections, which no caller awaits. */
  logger?: Logger;
}

export interface AuditTableReadOptions extends AuditTableOptions, AuditPageRequest {}

export interface PostgresAuditSink extends AuditSink {
  /** The schema-qualified, quoted table name, such as `"public"."rekey_audit"`. */
  readonly table: string;
  /** Reads one page of records through the sink's pool, as `readAuditRecords` does. */
  readRecords(request: AuditPageRequest): Promise<AuditPage>;
  /** Checks the table's hash chain through the sink's pool, as `verifyAuditTable` does. */
  verify(): Promise<AuditVerification>;
}

/** NAMEDATALEN - 1 in a default PostgreSQL build. PostgreSQL silently truncates longer identifiers. */
const MAX_IDENTIFIER_BYTES = 63;
const IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TRIGGER_FUNCTION_SUFFIX = '_reject_change';
const TRIGGER_NAME = 'rekey_append_only';
/** `pg_trigger.tgenabled` of a trigger that fires whatever `session_replication_role` is. */
const TRIGGER_ENABLED_ALWAYS = 'A';
/** Rows fetched per round trip while verifying. */
const VERIFY_BATCH_ROWS = 1000;
const CONNECT_TIMEOUT_MS = 10_000;

interface AuditTable {
  schema: string;
  name: string;
  /** Quoted, schema-qualified table name for SQL text. */
  sql: string;
  /** Quoted, schema-qualified name of the trigger function. */
  functionSql: string;
  /** Key of the transaction-level advisory lock that serialises appends, as a decimal bigint. */
  lockKey: string;
}

interface AuditRow {
  seq: string;
  time: Date;
  record: unknown;
  prev: string;
  hash: string;
}

/**
 * Connects to PostgreSQL, makes sure the audit table exists and is append-only (see
 * `ensureAuditSchema`), and returns a sink that appends hash-chained records to it.
 *
 * Records have the shape and hash the file sink gives them, so a record's hash is the same in
 * either sink. Each append runs in its own transaction under an advisory lock derived from the
 * table name, so sinks in several processes extend a single chain. `append` resolves once the
 * transaction committed.
 */
export async function createPostgresAuditSink(options: PostgresAuditSinkOptions): Promise<PostgresAuditSink> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'rekey-audit',
  });
  // An idle connection that the server closes must not crash the process. The next query opens
  // a new one and reports its own error.
  pool.on('error', (error) => {
    options.logger?.warn({ err: error.message }, 'idle PostgreSQL audit connection failed');
  });

  let target: AuditTable;
  try {
    target = await withClient(pool, async (client) => {
      const resolved = await resolveAuditTable(client, options.table ?? DEFAULT_AUDIT_TABLE, options.schema);
      await ensureTable(client, resolved);
      return resolved;
    });
  } catch (error) {
    await pool.end();
    throw error;
  }

  let pending: Promise<unknown> = Promise.resolve();
  let closed = false;
  let ended: Promise<void> | undefined;

  return {
    table: target.sql,

    async append(event: AuditEvent): Promise<void> {
      if (closed) throw new Error(`audit sink for table ${target.sql} is closed`);
      validateAuditEvent(event);
      assertStorableInJsonb(event);

      // Chained before the first await, so one sink's records land in the order of the calls.
      const appended = pending.then(() => withClient(pool, (client) => appendRecord(client, target, event)));
      pending = appended.catch(() => undefined);
      await appended;
    },

    async close(): Promise<void> {
      closed = true;
      await pending;
      ended ??= pool.end();
      await ended;
    },

    async readRecords(request: AuditPageRequest): Promise<AuditPage> {
      validatePageRequest(request);
      return withClient(pool, (client) => readPage(client, target, request));
    },
    verify: () => withClient(pool, (client) => verifyTable(client, target)),
  };
}

/**
 * Creates the audit table `table` (in `schema`, else in `current_schema()`) if it is missing, and
 * makes it append-only in the database:
 *
 * - a BEFORE UPDATE OR DELETE OR TRUNCATE statement trigger raises an exception, so a role that
 *   has those privileges on the table still cannot change or remove a row. It is enabled with
 *   ENABLE ALWAYS, so `session_replication_role = replica` does not skip it either;
 * - UPDATE, DELETE and TRUNCATE are revoked from PUBLIC.
 *
 * NOTE: a superuser, and the table's owner, can still run `ALTER TABLE ... DISABLE TRIGGER`, then
 * edit or delete rows, or drop the table. The database cannot prevent that; `verifyAuditTable`
 * detects an edited, deleted or moved row by its hash chain, unless the rows were cut from the
 * end or every hash after the edit was recomputed. Appending sinks should therefore connect as a
 * role that holds only INSERT and SELECT on a table that another role owns. This function run by
 * such a role changes nothing on a table that is already set up, and fails if the trigger is missing
 * or disabled.
 *
 * On an existing table it recreates a missing trigger and re-enables a disabled one, which needs
 * the owner's rights. It runs under the table's advisory lock, so concurrent callers are safe.
 */
export async function ensureAuditSchema(client: pg.ClientBase, table: string = DEFAULT_AUDIT_TABLE, schema?: string): Promise<void> {
  await ensureTable(client, await resolveAuditTable(client, table, schema));
}

/**
 * Checks the hash chain of the audit table, reading its rows in seq order in one snapshot. On
 * failure `line` is the seq of the first row that breaks the chain, and `records` counts the valid
 * rows before it. It detects an edited row (by its hash, or by a column that differs from its
 * record), a deleted row (a seq gap, reported at the row after it) and rows moved to other seqs.
 *
 * NOTE: rows removed from the end leave a valid, shorter chain, and a writer who recomputes every
 * hash after an edit produces a valid chain too. Detecting either needs the last seq and hash
 * kept somewhere the writer cannot reach.
 */
export async function verifyAuditTable(options: AuditTableOptions): Promise<AuditVerification> {
  return withStandaloneClient(options, (client, target) => verifyTable(client, target));
}

/**
 * Reads one page of audit records that match `options.filters`, ordered by seq, after
 * `options.afterSeq`. It does not check the hash chain. Pass the returned `nextAfterSeq` as
 * `afterSeq` to read the next page.
 */
export async function readAuditRecords(options: AuditTableReadOptions): Promise<AuditPage> {
  validatePageRequest(options);
  return withStandaloneClient(options, (client, target) => readPage(client, target, options));
}

async function resolveAuditTable(client: pg.ClientBase, table: string, schema: string | undefined): Promise<AuditTable> {
  const maxTableBytes = MAX_IDENTIFIER_BYTES - TRIGGER_FUNCTION_SUFFIX.length;
  if (!IDENTIFIER_PATTERN.test(table) || table.length > maxTableBytes) {
    throw new TypeError(
      `invalid audit table name "${table}": expected 1 to ${maxTableBytes} letters, digits or underscores, not starting with a digit`,
    );
  }
  if (schema !== undefined && (!IDENTIFIER_PATTERN.test(schema) || schema.length > MAX_IDENTIFIER_BYTES)) {
    throw new TypeError(
      `invalid audit schema name "${schema}": expected 1 to ${MAX_IDENTIFIER_BYTES} letters, digits or underscores, not starting with a digit`,
    );
  }

  let resolvedSchema = schema;
  if (resolvedSchema === undefined) {
    const result = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
    resolvedSchema = result.rows[0]?.schema ?? undefined;
    if (resolvedSchema === undefined) {
      throw new Error(`cannot place audit table "${table}": no schema of the search_path exists, so pass the schema option`);
    }
  }

  const schemaSql = pg.escapeIdentifier(resolvedSchema);
  // The lock key is derived from the qualified name, so every process appending to one table
  // takes the same lock and processes appending to different tables do not wait for each other.
  const digest = createHash('sha256').update(`rekey-audit:${resolvedSchema}.${table}`, 'utf8').digest();
  return {
    schema: resolvedSchema,
    name: table,
    sql: `${schemaSql}.${pg.escapeIdentifier(table)}`,
    functionSql: `${schemaSql}.${pg.escapeIdentifier(`${table}${TRIGGER_FUNCTION_SUFFIX}`)}`,
    lockKey: digest.readBigInt64BE(0).toString(),
  };
}

async function ensureTable(client: pg.ClientBase, target: AuditTable): Promise<void> {
  await inTransaction(client, 'BEGIN', async () => {
    // CREATE TABLE IF NOT EXISTS fails with a unique violation when another session creates the
    // same table at the same moment, so set-up takes the append lock first.
    await client.query('SELECT pg_advisory_xact_lock($1)', [target.lockKey]);

    const state = await client.query<{ tgenabled: string | null }>(
      `SELECT t.tgenabled FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = $3
        WHERE n.nspname = $1 AND c.relname = $2`,
      [target.schema, target.name, TRIGGER_NAME],
    );
    const row = state.rows[0];
    if (row === undefined) {
      await createTable(client, target);
      return;
    }
    if (row.tgenabled === TRIGGER_ENABLED_ALWAYS) return;

    const problem = row.tgenabled === null ? 'has no append-only trigger' : 'has its append-only trigger disabled';
    try {
      if (row.tgenabled === null) await createTrigger(client, target);
      else await client.query(`ALTER TABLE ${target.sql} ENABLE ALWAYS TRIGGER ${TRIGGER_NAME}`);
    } catch (error) {
      throw new Error(
        `audit table ${target.sql} ${problem} and restoring it failed: ${(error as Error).message}. ` +
          'Run the sink once as the table owner, or restore the trigger by hand.',
        { cause: error },
      );
    }
  });
}

async function createTable(client: pg.ClientBase, target: AuditTable): Promise<void> {
  // The seq, prev and hash columns repeat fields of the record for indexes and constraints. The
  // CHECK keeps them equal to the record, so a query on a column matches the values that verification hashes.
  await client.query(`
    CREATE TABLE ${target.sql} (
      seq bigint PRIMARY KEY CHECK (seq > 0),
      "time" timestamptz NOT NULL,
      record jsonb NOT NULL,
      prev text NOT NULL,
      hash text NOT NULL UNIQUE,
      CHECK (seq = (record->>'seq')::bigint AND prev = record->>'prev' AND hash = record->>'hash')
    );
    CREATE INDEX ON ${target.sql} ((record->>'runId'), seq);
    CREATE INDEX ON ${target.sql} ((record->>'environment'), seq);
    CREATE INDEX ON ${target.sql} ("time");
    REVOKE UPDATE, DELETE, TRUNCATE ON ${target.sql} FROM PUBLIC;
  `);
  await createTrigger(client, target);
}

async function createTrigger(client: pg.ClientBase, target: AuditTable): Promise<void> {
  await client.query(`
    CREATE OR REPLACE FUNCTION ${target.functionSql}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit table %.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING HINT = 'Audit records are only ever inserted.';
    END
    $$;
    CREATE TRIGGER ${TRIGGER_NAME} BEFORE UPDATE OR DELETE OR TRUNCATE ON ${target.sql}
      FOR EACH STATEMENT EXECUTE FUNCTION ${target.functionSql}();
    ALTER TABLE ${target.sql} ENABLE ALWAYS TRIGGER ${TRIGGER_NAME};
  `);
}

/** Appends the record of `event` after the table's last row, under the table's advisory lock. */
async function appendRecord(client: pg.ClientBase, target: AuditTable, event: AuditEvent): Promise<void> {
  await inTransaction(client, 'BEGIN', async () => {
    // The lock is held until COMMIT, and the last row is read after taking it. In READ COMMITTED
    // each statement sees the rows committed before it started, so the previous holder's row is
    // visible and two appenders never take the same seq.
    await client.query('SELECT pg_advisory_xact_lock($1)', [target.lockKey]);
    const head = await readHead(client, target);

    const unhashed = { seq: head.seq + 1, time: new Date().toISOString(), ...event, prev: head.hash };
    // The hash is computed over the record as it will be parsed back, as in the file sink.
    const stored = JSON.parse(JSON.stringify(unhashed)) as Omit<AuditRecord, 'hash'>;
    const record: AuditRecord = { ...stored, hash: hashRecord(stored) };

    await client.query(
      `INSERT INTO ${target.sql} (seq, "time", record, prev, hash) VALUES ($1, $2, $3, $4, $5)`,
      [record.seq, record.time, JSON.stringify(record), record.prev, record.hash],
    );
  });
}

/**
 * Reads the chain head from the last row. Throws if that row is not a valid record, because a
 * record appended after an edited one would hide the edit behind a link that looks valid.
 */
async function readHead(client: pg.ClientBase, target: AuditTable): Promise<ChainHead> {
  const result = await client.query<AuditRow>(`SELECT seq, "time", record, prev, hash FROM ${target.sql} ORDER BY seq DESC LIMIT 1`);
  const row = result.rows[0];
  if (row === undefined) return EMPTY_CHAIN;

  const check = checkRow(row, { seq: Number(row.seq) - 1, hash: row.prev });
  if ('reason' in check) {
    throw new Error(
      `cannot append to audit table ${target.sql}: its last record (seq ${row.seq}) is invalid: ${check.reason}. ` +
        'Run the audit verification to find the damage.',
    );
  }
  return check;
}

async function verifyTable(client: pg.ClientBase, target: AuditTable): Promise<AuditVerification> {
  return inTransaction(client, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async () => {
    const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [target.sql]);
    if ((exists.rows[0]?.oid ?? null) === null) throw new Error(`audit table ${target.sql} does not exist`);

    // A cursor rather than keyset pages, so a row whose seq was set to any value is still read.
    await client.query(`DECLARE rekey_audit_rows NO SCROLL CURSOR FOR SELECT seq, "time", record, prev, hash FROM ${target.sql} ORDER BY seq`);
    let head = EMPTY_CHAIN;
    let records = 0;
    for (;;) {
      const batch = await client.query<AuditRow>(`FETCH ${VERIFY_BATCH_ROWS} FROM rekey_audit_rows`);
      for (const row of batch.rows) {
        const result = checkRow(row, head);
        if ('reason' in result) return { ok: false, records, line: Number(row.seq), reason: result.reason };
        head = result;
        records += 1;
      }
      if (batch.rows.length < VERIFY_BATCH_ROWS) return { ok: true, records };
    }
  });
}

/** Checks a row against the record before it: first its columns against its record, then the record as the file verifier does. */
function checkRow(row: AuditRow, previous: ChainHead): ChainHead | { reason: string } {
  const record = row.record;
  if (typeof record === 'object' && record !== null && !Array.isArray(record)) {
    const fields = record as Record<string, unknown>;
    const columns: [string, boolean][] = [
      ['seq', String(fields.seq) === row.seq],
      ['time', typeof fields.time === 'string' && Date.parse(fields.time) === row.time.getTime()],
      ['prev', fields.prev === row.prev],
      ['hash', fields.hash === row.hash],
    ];
    const differing = columns.find(([, equal]) => !equal);
    if (differing !== undefined) {
      return { reason: `the ${differing[0]} column differs from the record's ${differing[0]}, so the row was edited` };
    }
  }
  return checkRecordLine(JSON.stringify(record), previous);
}

async function readPage(client: pg.ClientBase, target: AuditTable, request: AuditPageRequest): Promise<AuditPage> {
  validatePageRequest(request);
  const { filters } = request;
  const params: unknown[] = [request.afterSeq ?? 0];
  const conditions = ['seq > $1'];
  const addCondition = (sql: (placeholder: string) => string, value: unknown): void => {
    params.push(value);
    conditions.push(sql(`$${params.length}`));
  };

  if (filters.environment !== undefined) addCondition((p) => `record->>'environment' = ${p}`, filters.environment);
  if (filters.credentialId !== undefined) addCondition((p) => `record->>'credentialId' = ${p}`, filters.credentialId);
  if (filters.runId !== undefined) addCondition((p) => `record->>'runId' = ${p}`, filters.runId);
  if (filters.from !== undefined) addCondition((p) => `"time" >= ${p}`, filters.from);
  if (filters.to !== undefined) addCondition((p) => `"time" < ${p}`, filters.to);

  // One row past the limit shows whether a next page exists.
  params.push(request.limit + 1);
  const result = await client.query<{ record: AuditRecord }>(
    `SELECT record FROM ${target.sql} WHERE ${conditions.join(' AND ')} ORDER BY seq LIMIT $${params.length}`,
    params,
  );
  return toPage(result.rows.map((row) => row.record), request.limit);
}

/**
 * Throws a TypeError if `event` contains a string that jsonb rejects: one with U+0000, or with an
 * unpaired UTF-16 surrogate. The file sink stores both, but here the insert would fail.
 */
function assertStorableInJsonb(event: AuditEvent): void {
  const path = findUnstorableString(event, '');
  if (path !== null) {
    throw new TypeError(
      `audit event of run ${String(event.runId)} has a string at "${path}" that PostgreSQL jsonb cannot store: ` +
        'it contains U+0000 or an unpaired surrogate',
    );
  }
}

const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isStorableInJsonb(text: string): boolean {
  return !text.includes('\u0000') && !UNPAIRED_SURROGATE.test(text);
}

function findUnstorableString(value: unknown, path: string): string | null {
  if (typeof value === 'string') return isStorableInJsonb(value) ? null : path;
  if (typeof value !== 'object' || value === null) return null;

  for (const [key, item] of Object.entries(value)) {
    const itemPath = path === '' ? key : `${path}.${key}`;
    if (!isStorableInJsonb(key)) return itemPath;
    const found = findUnstorableString(item, itemPath);
    if (found !== null) return found;
  }
  return null;
}

/** Runs `work` between `begin` and COMMIT, rolling back if it throws. */
async function inTransaction<T>(client: pg.ClientBase, begin: string, work: () => Promise<T>): Promise<T> {
  await client.query(begin);
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function withClient<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await work(client);
  } catch (error) {
    // A connection whose last statement failed may be mid-transaction if ROLLBACK failed too, so
    // it is closed rather than handed to the next caller.
    broken = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    client.release(broken);
  }
}

async function withStandaloneClient<T>(options: AuditTableOptions, work: (client: pg.Client, target: AuditTable) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: options.connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'rekey-audit',
  });
  await client.connect();
  try {
    const target = await resolveAuditTable(client, options.table ?? DEFAULT_AUDIT_TABLE, options.schema);
    return await work(client, target);
  } finally {
    await client.end();
  }
}
