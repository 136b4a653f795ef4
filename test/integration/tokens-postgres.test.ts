import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresTokenStore, type PostgresTokenStore } from '../../src/api/token-store-postgres.js';
import {
  DEFAULT_TOKENS_FILE, describeTokenStoreLocation, tokenStoreFor, tokenStoreLocation, TokenStoreUnavailableError,
} from '../../src/api/token-store-select.js';
import { startHarness, type Harness } from '../support/harness.js';
import { withAdmin } from '../support/postgres.js';
import { transpileModuleTree } from '../support/transpile.js';

const INVENTORY = `
environments:
  demo:
    credentials:
      - id: api-token
        kind: generated-secret
        stores: [{ store: file, path: demo/api-token }]
  other:
    credentials:
      - id: api-token
        kind: generated-secret
        stores: [{ store: file, path: other/api-token }]
`;

/** A port nothing listens on: connections to it are refused at once. */
const CLOSED_PORT_URL = 'postgres://rekey:canary-db-password-5d1f@127.0.0.1:1/rekey';
const TOKEN_FORMAT = /^rk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/;

/** A database of this file's own, dropped after it. */
const database = `rekey_tokens_t_${randomBytes(6).toString('hex')}`;
const databaseUrl = `postgres://postgres@127.0.0.1:5432/${database}`;
const stores: PostgresTokenStore[] = [];
/** A login role that gets only SELECT on one token table; dropped after the database. */
const readerRole = `rekey_t_reader_${randomBytes(6).toString('hex')}`;

async function openStore(table?: string): Promise<PostgresTokenStore> {
  const store = await createPostgresTokenStore({ connectionString: databaseUrl, table });
  stores.push(store);
  return store;
}

async function queryDatabase<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

function altered(token: string): string {
  return `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
}

beforeAll(async () => {
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`));
});

afterAll(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
  await withAdmin(async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(readerRole)}`);
  });
});

describe('PostgreSQL token store', () => {
  it('stores only the SHA-256 of a token', async () => {
    const store = await openStore();
    const { token, stored } = await store.create({ role: 'operator', environments: ['demo'], expiresInMs: null, description: 'hash test' });

    expect(token).toMatch(TOKEN_FORMAT);
    const rows = await queryDatabase<{ id: string; sha256: Buffer; text: string }>(
      'SELECT id, sha256, t::text AS text FROM rekey_api_tokens t WHERE id = $1', [stored.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.sha256.toString('hex')).toBe(createHash('sha256').update(token).digest('hex'));
    expect(rows[0]!.text.includes(token.slice(16))).toBe(false);
    expect(rows[0]!.text.includes(Buffer.from(token).toString('hex'))).toBe(false);
  });

  it('accepts a created token with its role and environments', async () => {
    const store = await openStore();
    const { token, stored } = await store.create({ role: 'operator', environments: ['demo', 'other'], expiresInMs: 60_000, description: 'ci' });

    const checked = await store.check(token);
    expect(checked.status).toBe('valid');
    expect(checked.status === 'valid' ? checked.token : null).toEqual(stored);
    expect(stored.role).toBe('operator');
    expect(stored.environments).toEqual(['demo', 'other']);
    expect(Date.parse(stored.expiresAt!) - Date.parse(stored.createdAt)).toBe(60_000);
  });

  it('reports a token past its expiry as expired', async () => {
    const store = await openStore();
    const { token, stored } = await store.create({ role: 'admin', environments: null, expiresInMs: 60_000, description: 'short' });

    expect((await store.check(token, new Date(Date.parse(stored.createdAt) + 59_999))).status).toBe('valid');
    const later = await store.check(token, new Date(Date.parse(stored.createdAt) + 60_000));
    expect(later).toEqual({ status: 'expired', token: stored });
  });

  it('rejects an altered, unknown or malformed token', async () => {
    const store = await openStore();
    const { token } = await store.create({ role: 'admin', environments: null, expiresInMs: null, description: 'target' });

    expect(await store.check(altered(token))).toEqual({ status: 'unknown' });
    expect(await store.check(`rk_000000000000_${'A'.repeat(43)}`)).toEqual({ status: 'unknown' });
    expect(await store.check('not-a-token')).toEqual({ status: 'unknown' });
    expect(await store.check(`rk_${token.slice(3, 15)}_' OR '1'='1`)).toEqual({ status: 'unknown' });
  });

  it('revokes a token once', async () => {
    const store = await openStore();
    const { token, stored } = await store.create({ role: 'viewer', environments: null, expiresInMs: null, description: 'to revoke' });

    expect(await store.revoke(stored.id)).toBe(true);
    expect(await store.check(token)).toEqual({ status: 'unknown' });
    expect(await store.revoke(stored.id)).toBe(false);
    expect((await store.list()).map((listed) => listed.id)).not.toContain(stored.id);
  });

  it('lists tokens as stored, without the tokens', async () => {
    const table = `tokens_list_${randomBytes(4).toString('hex')}`;
    const store = await openStore(table);
    const first = await store.create({ role: 'viewer', environments: null, expiresInMs: null, description: 'first' });
    const second = await store.create({ role: 'admin', environments: ['demo'], expiresInMs: 3_600_000, description: 'second' });

    const listed = await store.list();
    expect(listed.map((entry) => entry.id).sort()).toEqual([first.stored.id, second.stored.id].sort());
    expect(listed.find((entry) => entry.id === second.stored.id)).toEqual(second.stored);
    const text = JSON.stringify(listed);
    expect(text.includes(first.token)).toBe(false);
    expect(text.includes(second.token)).toBe(false);
  });

  it('shares tokens between two stores on one table', async () => {
    const table = `tokens_shared_${randomBytes(4).toString('hex')}`;
    const [one, two] = await Promise.all([openStore(table), openStore(table)]);
    const { token, stored } = await one.create({ role: 'operator', environments: null, expiresInMs: null, description: 'shared' });

    expect((await two.check(token)).status).toBe('valid');
    expect(await two.revoke(stored.id)).toBe(true);
    expect(await one.check(token)).toEqual({ status: 'unknown' });
  });

  it('checks tokens with only SELECT', async () => {
    const table = `tokens_reader_${randomBytes(4).toString('hex')}`;
    const owner = await openStore(table);
    const { token } = await owner.create({ role: 'viewer', environments: null, expiresInMs: null, description: 'reader' });
    await withAdmin((admin) => admin.query(`CREATE ROLE ${pg.escapeIdentifier(readerRole)} LOGIN`));
    await queryDatabase(`GRANT SELECT ON ${table} TO ${pg.escapeIdentifier(readerRole)}`);

    const reader = await createPostgresTokenStore({ connectionString: `postgres://${readerRole}@127.0.0.1:5432/${database}`, table });
    stores.push(reader);

    expect((await reader.check(token)).status).toBe('valid');
    await expect(reader.create({ role: 'admin', environments: null, expiresInMs: null, description: 'denied' })).rejects.toThrow(`permission denied for table ${table}`);
  });

  it('rejects an invalid table name', async () => {
    await expect(createPostgresTokenStore({ connectionString: databaseUrl, table: 'tokens; DROP TABLE x' })).rejects.toThrow(
      'invalid token table name "tokens; DROP TABLE x"',
    );
  });

  it('rejects a row with an unknown role', async () => {
    const table = `tokens_roles_${randomBytes(4).toString('hex')}`;
    await openStore(table);
    await expect(queryDatabase(
      `INSERT INTO ${table} (id, sha256, role, environments, created_at, expires_at, description) VALUES ('aaaaaaaaaaaa', $1, 'root', NULL, now(), NULL, '')`,
      [Buffer.alloc(32)],
    )).rejects.toThrow(/check constraint/);
  });
});

describe('token store selection', () => {
  const cases: Array<[string, Record<string, string>, ReturnType<typeof tokenStoreLocation>]> = [
    ['no variables', {}, { kind: 'file', path: DEFAULT_TOKENS_FILE }],
    ['DATABASE_URL', { DATABASE_URL: 'postgres://a/db' }, { kind: 'postgres', connectionString: 'postgres://a/db', table: undefined }],
    ['REKEY_TOKENS_DATABASE_URL over DATABASE_URL', { DATABASE_URL: 'postgres://a/db', REKEY_TOKENS_DATABASE_URL: 'postgres://b/tokens', REKEY_TOKENS_TABLE: 'api_tokens' }, { kind: 'postgres', connectionString: 'postgres://b/tokens', table: 'api_tokens' }],
    ['an explicit REKEY_TOKENS_FILE over both URLs', { DATABASE_URL: 'postgres://a/db', REKEY_TOKENS_DATABASE_URL: 'postgres://b/tokens', REKEY_TOKENS_FILE: '/etc/rekey/tokens.json' }, { kind: 'file', path: '/etc/rekey/tokens.json' }],
    ['empty variables as unset', { DATABASE_URL: 'postgres://a/db', REKEY_TOKENS_FILE: '', REKEY_TOKENS_DATABASE_URL: '' }, { kind: 'postgres', connectionString: 'postgres://a/db', table: undefined }],
  ];
  for (const [name, env, expected] of cases) {
    it(`selects the store from ${name}`, () => {
      expect(tokenStoreLocation(env)).toEqual(expected);
    });
  }

  it('describes a database location without its URL', () => {
    const description = describeTokenStoreLocation(tokenStoreLocation({ DATABASE_URL: CLOSED_PORT_URL }));
    expect(description).toBe('PostgreSQL table rekey_api_tokens');
  });

  it('reports an unreachable database without its password', async () => {
    const tokens = tokenStoreFor({ REKEY_TOKENS_DATABASE_URL: CLOSED_PORT_URL });
    const failure = await tokens.check(`rk_000000000000_${'A'.repeat(43)}`).catch((error: unknown) => error);
    await tokens.close();

    expect(failure).toBeInstanceOf(TokenStoreUnavailableError);
    expect((failure as Error).message).toMatch(/^the PostgreSQL table rekey_api_tokens could not be read: /);
    expect((failure as Error).message.includes('canary-db-password-5d1f')).toBe(false);
  });
});

describe('API with tokens in PostgreSQL', () => {
  let harness: Harness;
  let store: PostgresTokenStore;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  async function state(): Promise<string> {
    const keys = (await harness.runtime.redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:*`)).sort();
    return JSON.stringify({ keys, counts: await harness.runtime.queue.getJobCounts() });
  }

  async function rotate(token: string, environment = 'demo') {
    return harness.app.inject({
      method: 'POST', url: `/v1/environments/${environment}/rotations`,
      headers: { authorization: `Bearer ${token}` }, payload: { reason: 'postgres tokens', mode: 'incident' },
    });
  }

  beforeAll(async () => {
    const table = `tokens_api_${randomBytes(4).toString('hex')}`;
    harness = await startHarness({
      inventory: INVENTORY,
      worker: false,
      env: { REKEY_TOKENS_FILE: '', REKEY_TOKENS_DATABASE_URL: databaseUrl, REKEY_TOKENS_TABLE: table },
    });
    store = await openStore(table);
    for (const [name, role, environments, expiresInMs] of [
      ['viewer', 'viewer', null, null], ['operator', 'operator', null, null], ['scoped', 'operator', ['other'], null],
      ['expired', 'admin', null, -1000], ['revoked', 'admin', null, null],
    ] as const) {
      const created = await store.create({ role, environments: environments === null ? null : [...environments], expiresInMs, description: name });
      tokens[name] = created.token;
      ids[name] = created.stored.id;
    }
    await store.revoke(ids.revoked!);
    await state();
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('lets a viewer token read', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: { authorization: `Bearer ${tokens.viewer}` } });
    expect(response.statusCode).toBe(200);
    expect((response.json() as { environments: Array<{ name: string }> }).environments.map((environment) => environment.name)).toEqual(['demo', 'other']);
  });

  it('rejects disallowed rotations without change', async () => {
    const cases: Array<[string, number, string]> = [
      ['viewer', 403, 'FORBIDDEN'], ['scoped', 403, 'FORBIDDEN'], ['expired', 401, 'TOKEN_EXPIRED'], ['revoked', 401, 'UNAUTHENTICATED'],
    ];
    for (const [name, status, code] of cases) {
      const before = await state();
      const response = await rotate(tokens[name]!);
      expect(response.statusCode, name).toBe(status);
      expect((response.json() as { code: string }).code, name).toBe(code);
      expect(await state(), name).toBe(before);
    }
  });

  it('records the token as the actor of its run', async () => {
    const response = await rotate(tokens.operator!);
    expect(response.statusCode).toBe(202);
    const run = await harness.runtime.records.getRun((response.json() as { runId: string }).runId);
    expect(run?.actor).toBe(`token:${ids.operator}`);
  });

  it('writes no token to the logs', () => {
    const logs = harness.logs.join('');
    for (const token of Object.values(tokens)) expect(logs.includes(token)).toBe(false);
  });
});

describe('API when the token database is down', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({ inventory: INVENTORY, worker: false, env: { REKEY_TOKENS_FILE: '', REKEY_TOKENS_DATABASE_URL: CLOSED_PORT_URL } });
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('returns 503 without the password', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: { authorization: `Bearer rk_000000000000_${'A'.repeat(43)}` } });
    expect(response.statusCode).toBe(503);
    expect((response.json() as { code: string }).code).toBe('TOKEN_STORE_UNAVAILABLE');
    expect(response.headers['retry-after']).toBe('5');
    expect(harness.logs.join('').includes('token store unavailable')).toBe(true);
    expect(harness.logs.join('').includes('canary-db-password-5d1f')).toBe(false);
    expect(response.body.includes('canary-db-password-5d1f')).toBe(false);
  });

  it('still accepts the bootstrap token', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: harness.auth });
    expect(response.statusCode).toBe(200);
  });
});

describe('rekey token CLI', () => {
  let directory: string;
  let cli: string;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'rekey-token-cli-'));
    const build = join(directory, 'build');
    cli = await transpileModuleTree('src/cli/main.ts', build);
    // Loaded with a dynamic import, which the transpiler does not follow.
    await transpileModuleTree('src/api/token-store-postgres.ts', build);
    symlinkSync(resolve('node_modules'), join(build, 'node_modules'), 'dir');
  }, 120_000);

  afterAll(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  function rekey(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
    const inherited = { ...process.env };
    for (const name of ['DATABASE_URL', 'REKEY_TOKENS_DATABASE_URL', 'REKEY_TOKENS_FILE', 'REKEY_TOKENS_TABLE']) delete inherited[name];
    const result = spawnSync(process.execPath, [cli, 'token', ...args], { env: { ...inherited, ...env }, encoding: 'utf8', timeout: 60_000 });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  /** Runs create, list, revoke and list again; returns the token, its id and each listing. */
  function roundTrip(env: Record<string, string>): { token: string; id: string; listed: string; after: string } {
    const created = rekey(['create', '--role', 'operator', '--environment', 'demo', '--expires', '1h', '--description', 'cli test'], env);
    expect(created.stderr).toMatch(/^created token [0-9a-f]{12} \(operator, demo, expires \S+\); it is shown once:\n$/);
    expect(created.status).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(TOKEN_FORMAT);
    const id = token.slice(3, 15);

    const listed = rekey(['list'], env);
    expect(listed.status).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${id}  operator demo {17}expires \\S+  cli test\\n$`));

    const revoked = rekey(['revoke', id], env);
    expect(revoked.stdout).toBe(`token ${id} revoked\n`);
    expect(revoked.status).toBe(0);
    const after = rekey(['list'], env);
    expect(after.status).toBe(0);
    return { token, id, listed: listed.stdout, after: after.stdout };
  }

  it('creates, lists and revokes tokens in PostgreSQL', async () => {
    const table = `tokens_cli_${randomBytes(4).toString('hex')}`;
    const env = { REKEY_TOKENS_DATABASE_URL: databaseUrl, REKEY_TOKENS_TABLE: table };
    const { token, id, after } = roundTrip(env);

    expect(after).toBe('');
    expect(await queryDatabase(`SELECT id FROM ${table}`)).toEqual([]);
    expect(token.slice(3, 15)).toBe(id);
  });

  it('creates, lists and revokes tokens in the file', () => {
    const path = join(directory, 'tokens.json');
    const { token, after } = roundTrip({ REKEY_TOKENS_FILE: path });

    expect(after).toBe('');
    expect(readFileSync(path, 'utf8').includes(token)).toBe(false);
  });

  it('prefers an explicit token file', async () => {
    const table = `tokens_cli_${randomBytes(4).toString('hex')}`;
    const path = join(directory, 'explicit.json');
    const created = rekey(['create', '--role', 'viewer'], { REKEY_TOKENS_FILE: path, DATABASE_URL: databaseUrl, REKEY_TOKENS_TABLE: table });

    expect(created.status).toBe(0);
    const id = created.stdout.trim().slice(3, 15);
    expect((JSON.parse(readFileSync(path, 'utf8')) as { tokens: Array<{ id: string }> }).tokens.map((entry) => entry.id)).toEqual([id]);
    expect(await queryDatabase('SELECT to_regclass($1) AS found', [table])).toEqual([{ found: null }]);
  });

  it('fails on an unreachable database without its password', () => {
    const listed = rekey(['list'], { DATABASE_URL: CLOSED_PORT_URL });

    expect(listed.status).toBe(1);
    expect(listed.stderr).toMatch(/^rekey: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
    expect(`${listed.stdout}${listed.stderr}`.includes('canary-db-password-5d1f')).toBe(false);
  });

  it('reports an unknown id on revoke', () => {
    const table = `tokens_cli_${randomBytes(4).toString('hex')}`;
    const revoked = rekey(['revoke', '000000000000'], { DATABASE_URL: databaseUrl, REKEY_TOKENS_TABLE: table });

    expect(revoked.status).toBe(1);
    expect(revoked.stderr).toBe(`no token with id 000000000000 in the PostgreSQL table ${table}\n`);
  });
});
