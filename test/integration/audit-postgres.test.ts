import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  GENESIS_HASH, hashRecord, readAuditFileRecords, verifyAuditFile, type AuditEvent, type AuditPage, type AuditRecord,
} from '../../src/audit/index.js';
import {
  createPostgresAuditSink, ensureAuditSchema, readAuditRecords, verifyAuditTable, type PostgresAuditSink,
} from '../../src/audit/postgres-sink.js';
import { POSTGRES_ADMIN_URL, uniqueRoleName, withAdmin } from '../support/postgres.js';

const sinks: PostgresAuditSink[] = [];
const tables: string[] = [];
const roles: string[] = [];
let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'rekey-audit-pg-'));
});

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(sinks.splice(0).map((sink) => sink.close()));
  await withAdmin(async (admin) => {
    for (const table of tables.splice(0)) {
      await admin.query(`DROP TABLE IF EXISTS public.${pg.escapeIdentifier(table)}`);
      await admin.query(`DROP FUNCTION IF EXISTS public.${pg.escapeIdentifier(`${table}_reject_change`)}()`);
    }
    for (const role of roles.splice(0)) await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
  });
  await rm(directory, { recursive: true, force: true });
});

/** Returns a table name no other test uses. The table and its trigger function are dropped after the test. */
function newTableName(): string {
  const table = `rekey_audit_t_${randomBytes(6).toString('hex')}`;
  tables.push(table);
  return table;
}

async function openSink(table: string, connectionString = POSTGRES_ADMIN_URL): Promise<PostgresAuditSink> {
  const sink = await createPostgresAuditSink({ connectionString, table });
  sinks.push(sink);
  return sink;
}

function event(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    runId: 'run-1',
    rotationId: 'rot-1',
    environment: 'prod',
    credentialId: 'app-aws',
    provider: 'aws-iam-access-key',
    step: 'stage',
    outcome: 'started',
    actor: 'alice',
    trigger: 'cli',
    ...overrides,
  };
}

async function appendEvents(sink: PostgresAuditSink, count: number): Promise<void> {
  for (let index = 1; index <= count; index += 1) await sink.append(event({ detail: { index } }));
}

async function storedRecords(table: string): Promise<AuditRecord[]> {
  return withAdmin(async (admin) => {
    const result = await admin.query<{ record: AuditRecord }>(`SELECT record FROM public.${pg.escapeIdentifier(table)} ORDER BY seq`);
    return result.rows.map((row) => row.record);
  });
}

async function rowCount(table: string): Promise<number> {
  return withAdmin(async (admin) => {
    const result = await admin.query<{ count: string }>(`SELECT count(*) AS count FROM public.${pg.escapeIdentifier(table)}`);
    return Number(result.rows[0]?.count);
  });
}

/** Runs `statements` as the superuser with every trigger of `table` disabled, as an attacker with superuser rights would. */
async function tamper(table: string, statements: string[]): Promise<void> {
  const name = `public.${pg.escapeIdentifier(table)}`;
  await withAdmin(async (admin) => {
    await admin.query(`ALTER TABLE ${name} DISABLE TRIGGER ALL`);
    for (const statement of statements) await admin.query(statement.replaceAll('$table', name));
  });
}

/** Creates a login role that owns nothing and has only `privileges` on `table`, and returns its connection URL. */
async function grantee(table: string, privileges: string): Promise<string> {
  const role = uniqueRoleName();
  roles.push(role);
  await withAdmin(async (admin) => {
    await admin.query(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`);
    await admin.query(`GRANT ${privileges} ON public.${pg.escapeIdentifier(table)} TO ${pg.escapeIdentifier(role)}`);
  });
  const url = new URL(POSTGRES_ADMIN_URL);
  url.username = role;
  url.password = '';
  return url.toString();
}

/** Runs `sql` on a new connection to `connectionString` and returns the SQLSTATE and message it fails with. */
async function failure(connectionString: string, sql: string): Promise<{ code: string; message: string }> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(sql);
  } catch (error) {
    const { code, message } = error as { code: string; message: string };
    return { code, message };
  } finally {
    await client.end();
  }
  throw new Error(`expected "${sql}" to fail`);
}

function expectedHash(record: AuditRecord): string {
  const { hash: _hash, ...unhashed } = record;
  return hashRecord(unhashed);
}

describe('when appending', () => {
  it('chains records from the genesis hash', async () => {
    const table = newTableName();
    const sink = await openSink(table);
    await appendEvents(sink, 3);

    const records = await storedRecords(table);
    expect(records.map((record) => record.seq)).toEqual([1, 2, 3]);
    expect(records[0]?.prev).toBe(GENESIS_HASH);
    expect(records[1]?.prev).toBe(records[0]?.hash);
    expect(records[2]?.prev).toBe(records[1]?.hash);
    expect(await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).toEqual({ ok: true, records: 3 });
  });

  it('stores the record and hash the file sink computes', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2031-02-03T04:05:06.789Z'));
    const table = newTableName();
    const sink = await openSink(table);
    const appended = event({ oldKeyId: 'AKIAOLD', newKeyId: null, fingerprints: { secretAccessKey: 'f'.repeat(64) }, detail: { attempt: 2 } });
    await sink.append(appended);

    const [record] = await storedRecords(table);
    const unhashed = { seq: 1, time: '2031-02-03T04:05:06.789Z', ...appended, prev: GENESIS_HASH };
    expect(record).toEqual({ ...unhashed, hash: hashRecord(unhashed) });
    expect(record?.hash).toBe(expectedHash(record as AuditRecord));
  });

  it('writes records the file verifier accepts', async () => {
    const table = newTableName();
    const sink = await openSink(table);
    await appendEvents(sink, 4);
    await sink.append(event({ detail: { text: 'grüße € 😀 "quoted" \\ back', ratio: 0.1, large: 1e21, negative: -5, flag: false, none: null } }));

    const records = await storedRecords(table);
    const file = join(directory, 'audit.jsonl');
    await writeFile(file, records.map((record) => `${JSON.stringify(record)}\n`).join(''));
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 5 });
    expect(records[4]?.hash).toBe(expectedHash(records[4] as AuditRecord));
  });

  it('rejects an invalid event without inserting', async () => {
    const table = newTableName();
    const sink = await openSink(table);

    await expect(sink.append(event({ step: 'teleport' }))).rejects.toThrow(/unknown step "teleport"/);
    await expect(sink.append(event({ detail: { note: 'a\u0000b' } }))).rejects.toThrow(
      'audit event of run run-1 has a string at "detail.note" that PostgreSQL jsonb cannot store: it contains U+0000 or an unpaired surrogate',
    );
    await expect(sink.append(event({ actor: 'half \uD83D' }))).rejects.toThrow(/at "actor" that PostgreSQL jsonb cannot store/);
    expect(await rowCount(table)).toBe(0);
  });

  it('rejects an append after close', async () => {
    const table = newTableName();
    const sink = await openSink(table);
    await sink.close();

    await expect(sink.append(event())).rejects.toThrow(`audit sink for table "public"."${table}" is closed`);
  });

  it('rejects an invalid table name', async () => {
    await expect(createPostgresAuditSink({ connectionString: POSTGRES_ADMIN_URL, table: 'audit; DROP TABLE x' })).rejects.toThrow(
      /^invalid audit table name "audit; DROP TABLE x"/,
    );
  });

  it('rejects an append after an edited record', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 3);
    await tamper(table, [`UPDATE $table SET record = jsonb_set(record, '{actor}', '"mallory"') WHERE seq = 3`]);

    const sink = await openSink(table);
    await expect(sink.append(event())).rejects.toThrow(
      `cannot append to audit table "public"."${table}": its last record (seq 3) is invalid: hash does not match the record content, so the record was edited`,
    );
    expect(await rowCount(table)).toBe(3);
  });
});

describe('when a role changes rows', () => {
  it('rejects changes by an INSERT, SELECT grantee', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 2);
    const url = await grantee(table, 'INSERT, SELECT');
    const name = `public.${table}`;

    for (const sql of [`UPDATE ${name} SET prev = prev`, `DELETE FROM ${name}`, `TRUNCATE ${name}`]) {
      const error = await failure(url, sql);
      expect(error.code).toBe('42501');
      expect(error.message).toBe(`permission denied for table ${table}`);
    }
    expect(await rowCount(table)).toBe(2);
  });

  it('lets an INSERT, SELECT grantee append', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 2);
    const url = await grantee(table, 'INSERT, SELECT');

    const sink = await openSink(table, url);
    await sink.append(event({ actor: 'worker' }));

    expect((await storedRecords(table)).map((record) => record.actor)).toEqual(['alice', 'alice', 'worker']);
    expect(await verifyAuditTable({ connectionString: url, table })).toEqual({ ok: true, records: 3 });
  });

  it('rejects changes by a grantee of every privilege', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 2);
    const url = await grantee(table, 'ALL PRIVILEGES');
    const name = `public.${table}`;

    for (const [operation, sql] of [['UPDATE', `UPDATE ${name} SET prev = prev`], ['DELETE', `DELETE FROM ${name}`], ['TRUNCATE', `TRUNCATE ${name}`]]) {
      const error = await failure(url, sql as string);
      expect(error.code).toBe('P0001');
      expect(error.message).toBe(`audit table public.${table} is append-only: ${operation} is not allowed`);
    }
    expect(await rowCount(table)).toBe(2);
  });

  it('rejects changes by the superuser', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 2);
    const name = `public.${table}`;

    for (const [operation, sql] of [['UPDATE', `UPDATE ${name} SET prev = prev WHERE seq = 1`], ['DELETE', `DELETE FROM ${name} WHERE seq = 2`], ['TRUNCATE', `TRUNCATE ${name}`]]) {
      const error = await failure(POSTGRES_ADMIN_URL, sql as string);
      expect(error.code).toBe('P0001');
      expect(error.message).toBe(`audit table public.${table} is append-only: ${operation} is not allowed`);
    }
    expect(await rowCount(table)).toBe(2);
  });

  it('rejects changes in replica replication mode', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 2);

    const error = await failure(POSTGRES_ADMIN_URL, `SET session_replication_role = replica; DELETE FROM public.${table}`);
    expect(error.message).toBe(`audit table public.${table} is append-only: DELETE is not allowed`);
    expect(await rowCount(table)).toBe(2);
  });

  it('re-enables a disabled trigger when the owner opens a sink', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 1);
    await tamper(table, []);

    await openSink(table);
    const error = await failure(POSTGRES_ADMIN_URL, `DELETE FROM public.${table}`);
    expect(error.message).toBe(`audit table public.${table} is append-only: DELETE is not allowed`);
  });

  it('fails to open as a grantee while the trigger is disabled', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 1);
    const url = await grantee(table, 'INSERT, SELECT');
    await tamper(table, []);

    await expect(createPostgresAuditSink({ connectionString: url, table })).rejects.toThrow(
      `audit table "public"."${table}" has its append-only trigger disabled and restoring it failed: must be owner of table ${table}. ` +
        'Run the sink once as the table owner, or restore the trigger by hand.',
    );
  });
});

describe('when a superuser bypasses the trigger', () => {
  it('verifies an untouched table', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 10);

    expect(await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).toEqual({ ok: true, records: 10 });
  });

  it('detects an edited record', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 10);
    await tamper(table, [`UPDATE $table SET record = jsonb_set(record, '{actor}', '"mallory"') WHERE seq = 5`]);

    expect(await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).toEqual({
      ok: false, records: 4, line: 5, reason: 'hash does not match the record content, so the record was edited',
    });
  });

  it('detects an edited time column', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 10);
    await tamper(table, [`UPDATE $table SET "time" = "time" - interval '1 hour' WHERE seq = 6`]);

    expect(await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).toEqual({
      ok: false, records: 5, line: 6, reason: "the time column differs from the record's time, so the row was edited",
    });
  });

  it('detects an edit with a recomputed hash', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 10);
    const edited = { ...(await storedRecords(table))[4] as AuditRecord, actor: 'mallory' };
    const hash = expectedHash(edited);
    await tamper(table, [
      `UPDATE $table SET hash = '${hash}', record = ${pg.escapeLiteral(JSON.stringify({ ...edited, hash }))}::jsonb WHERE seq = 5`,
    ]);

    expect(await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).toEqual({
      ok: false, records: 5, line: 6,
      reason: 'prev does not match the hash of the previous record, so a record before it was deleted, replaced or moved',
    });
  });

  it('detects a deleted record', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 10);
    await tamper(table, ['DELETE FROM $table WHERE seq = 7']);

    expect(await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).toEqual({
      ok: false, records: 6, line: 8, reason: 'seq is 8 but 7 was expected, so a record was deleted, inserted or moved',
    });
  });

  it('detects two swapped seqs', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 10);
    // The CHECK constraint keeps the seq column equal to the record's seq, so both change.
    await tamper(table, [
      `UPDATE $table SET seq = 1000003, record = jsonb_set(record, '{seq}', '1000003') WHERE seq = 3`,
      `UPDATE $table SET seq = 3, record = jsonb_set(record, '{seq}', '3') WHERE seq = 4`,
      `UPDATE $table SET seq = 4, record = jsonb_set(record, '{seq}', '4') WHERE seq = 1000003`,
    ]);

    expect(await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).toEqual({
      ok: false, records: 2, line: 3,
      reason: 'prev does not match the hash of the previous record, so a record before it was deleted, replaced or moved',
    });
  });

  it('detects a seq column that differs from its record', async () => {
    const table = newTableName();
    await appendEvents(await openSink(table), 10);
    await tamper(table, [
      `ALTER TABLE $table DROP CONSTRAINT ${pg.escapeIdentifier(`${table}_check`)}`,
      'UPDATE $table SET seq = 11 WHERE seq = 10',
    ]);

    expect(await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).toEqual({
      ok: false, records: 9, line: 11, reason: "the seq column differs from the record's seq, so the row was edited",
    });
  });

  it('reports a missing table', async () => {
    const table = newTableName();

    await expect(verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).rejects.toThrow(
      `audit table "public"."${table}" does not exist`,
    );
  });
});

describe('when sinks append concurrently', () => {
  it('keeps one chain of 100 records', async () => {
    const table = newTableName();
    const [first, second] = await Promise.all([openSink(table), openSink(table)]);

    const appends = [];
    for (let index = 1; index <= 50; index += 1) {
      appends.push((first as PostgresAuditSink).append(event({ actor: 'first', detail: { index } })));
      appends.push((second as PostgresAuditSink).append(event({ actor: 'second', detail: { index } })));
    }
    await Promise.all(appends);

    expect(await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table })).toEqual({ ok: true, records: 100 });
    const records = await storedRecords(table);
    expect(records.map((record) => record.seq)).toEqual(Array.from({ length: 100 }, (_, index) => index + 1));
    for (const actor of ['first', 'second']) {
      const indexes = records.filter((record) => record.actor === actor).map((record) => record.detail?.index);
      expect(indexes).toEqual(Array.from({ length: 50 }, (_, index) => index + 1));
    }
  });

  it('creates a missing table once for two sinks', async () => {
    const table = newTableName();
    const clients = [new pg.Client({ connectionString: POSTGRES_ADMIN_URL }), new pg.Client({ connectionString: POSTGRES_ADMIN_URL })];
    await Promise.all(clients.map((client) => client.connect()));
    try {
      await Promise.all(clients.map((client) => ensureAuditSchema(client, table)));
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }

    const triggers = await withAdmin((admin) => admin.query(
      "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal", [`public.${table}`],
    ));
    expect(triggers.rows).toEqual([{ tgname: 'rekey_append_only', tgenabled: 'A' }]);
  });
});

describe('when reading pages', () => {
  const START = Date.parse('2032-05-01T00:00:00.000Z');
  const MINUTE = 60_000;

  /** Appends nine records one minute apart: seq n has environment prod for odd n, run-a for n <= 5, credential db for n divisible by 3. */
  async function appendSample(table: string): Promise<void> {
    vi.useFakeTimers({ toFake: ['Date'] });
    const sink = await openSink(table);
    for (let seq = 1; seq <= 9; seq += 1) {
      vi.setSystemTime(START + (seq - 1) * MINUTE);
      await sink.append(event({
        environment: seq % 2 === 1 ? 'prod' : 'staging',
        runId: seq <= 5 ? 'run-a' : 'run-b',
        credentialId: seq % 3 === 0 ? 'db' : 'app-aws',
        detail: { seq },
      }));
    }
  }

  function seqs(page: AuditPage): number[] {
    return page.records.map((record) => record.seq);
  }

  it('pages through one environment', async () => {
    const table = newTableName();
    await appendSample(table);
    const read = (afterSeq?: number): Promise<AuditPage> =>
      readAuditRecords({ connectionString: POSTGRES_ADMIN_URL, table, filters: { environment: 'prod' }, limit: 2, afterSeq });

    const first = await read();
    expect(seqs(first)).toEqual([1, 3]);
    expect(first.nextAfterSeq).toBe(3);
    const second = await read(3);
    expect(seqs(second)).toEqual([5, 7]);
    expect(second.nextAfterSeq).toBe(7);
    const last = await read(7);
    expect(seqs(last)).toEqual([9]);
    expect(last.nextAfterSeq).toBeNull();
  });

  it('ends a page that fills exactly without a cursor', async () => {
    const table = newTableName();
    await appendSample(table);

    const page = await readAuditRecords({ connectionString: POSTGRES_ADMIN_URL, table, filters: { runId: 'run-b' }, limit: 4 });
    expect(seqs(page)).toEqual([6, 7, 8, 9]);
    expect(page.nextAfterSeq).toBeNull();
  });

  it('combines run, credential and time filters', async () => {
    const table = newTableName();
    await appendSample(table);
    const connection = { connectionString: POSTGRES_ADMIN_URL, table };

    const byCredential = await readAuditRecords({ ...connection, filters: { credentialId: 'db' }, limit: 10 });
    expect(seqs(byCredential)).toEqual([3, 6, 9]);
    const byRunAndCredential = await readAuditRecords({ ...connection, filters: { runId: 'run-a', credentialId: 'db' }, limit: 10 });
    expect(seqs(byRunAndCredential)).toEqual([3]);
    const byTime = await readAuditRecords({
      ...connection, filters: { from: new Date(START + 3 * MINUTE), to: new Date(START + 6 * MINUTE) }, limit: 10,
    });
    expect(seqs(byTime)).toEqual([4, 5, 6]);
    expect(byTime.records[0]?.time).toBe('2032-05-01T00:03:00.000Z');
  });

  it('reads the same pages from a file trail', async () => {
    const table = newTableName();
    await appendSample(table);
    const file = join(directory, 'audit.jsonl');
    await writeFile(file, (await storedRecords(table)).map((record) => `${JSON.stringify(record)}\n`).join(''));

    const requests = [
      { filters: { environment: 'prod' }, limit: 2, afterSeq: 3 },
      { filters: { runId: 'run-b', credentialId: 'db' }, limit: 5 },
      { filters: { environment: 'staging', from: new Date(START + 2 * MINUTE), to: new Date(START + 8 * MINUTE) }, limit: 2 },
      { filters: {}, limit: 4, afterSeq: 4 },
    ];
    for (const request of requests) {
      const fromTable = await readAuditRecords({ connectionString: POSTGRES_ADMIN_URL, table, ...request });
      expect(await readAuditFileRecords(file, request)).toEqual(fromTable);
    }
    expect(seqs(await readAuditFileRecords(file, requests[2] as (typeof requests)[number]))).toEqual([4, 6]);
  });

  it('reads a missing file as an empty trail', async () => {
    expect(await readAuditFileRecords(join(directory, 'missing.jsonl'), { filters: {}, limit: 5 })).toEqual({ records: [], nextAfterSeq: null });
  });

  it('rejects an invalid limit and cursor', async () => {
    const table = newTableName();
    const sink = await openSink(table);

    await expect(sink.readRecords({ filters: {}, limit: 0 })).rejects.toThrow('invalid audit page limit 0: expected an integer from 1 to 1000');
    await expect(sink.readRecords({ filters: {}, limit: 5, afterSeq: -1 })).rejects.toThrow(
      'invalid audit page cursor afterSeq -1: expected a non-negative integer',
    );
    await expect(readAuditFileRecords(join(directory, 'audit.jsonl'), { filters: { from: new Date('soon') }, limit: 5 })).rejects.toThrow(
      'invalid audit filter "from": expected a valid Date',
    );
  });
});
