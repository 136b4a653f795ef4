import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { ensureAuditSchema, verifyAuditTable } from '../../src/audit/postgres-sink.js';
import { POSTGRES_ADMIN_URL, startHarness, type Harness } from '../support/harness.js';

/*
 * The audit trail is a PostgreSQL table that rekey's role may only INSERT into and SELECT from.
 * Revoking INSERT makes every append fail: rekey must start no step, say why in /readyz, and
 * finish the run once the grant is back, with one unbroken chain and no step run twice.
 */

const INVENTORY = `
environments:
  demo:
    credentials:
      - id: api-token
        kind: generated-secret
        stores: [{ store: file, path: demo/api-token }]
`;

const suffix = randomBytes(4).toString('hex');
const table = `rekey_audit_outage_${suffix}`;
const writer = `rekey_audit_writer_${suffix}`;

async function admin<T>(action: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    return await action(client);
  } finally {
    await client.end();
  }
}

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('an audit trail that cannot be written', () => {
  let harness: Harness;
  let writerUrl: string;

  beforeAll(async () => {
    await admin(async (client) => {
      await ensureAuditSchema(client, table);
      await client.query(`CREATE ROLE ${pg.escapeIdentifier(writer)} LOGIN`);
      await client.query(`GRANT SELECT, INSERT ON ${pg.escapeIdentifier(table)} TO ${pg.escapeIdentifier(writer)}`);
    });
    const url = new URL(POSTGRES_ADMIN_URL);
    url.username = writer;
    writerUrl = url.toString();
    harness = await startHarness({ inventory: INVENTORY, env: { REKEY_AUDIT_DATABASE_URL: writerUrl, REKEY_AUDIT_TABLE: table } });
  });

  afterAll(async () => {
    await harness?.close();
    await admin(async (client) => {
      await client.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(table)} CASCADE`);
      await client.query(`DROP FUNCTION IF EXISTS ${pg.escapeIdentifier(`${table}_append_only`)}() CASCADE`).catch(() => undefined);
      await client.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(writer)}`);
    });
  });

  it('holds the run, reports it in /readyz, then finishes it', async () => {
    await admin((client) => client.query(`REVOKE INSERT ON ${pg.escapeIdentifier(table)} FROM ${pg.escapeIdentifier(writer)}`));
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'audit outage', mode: 'incident' } });
    expect(response.statusCode, response.body).toBe(202);
    const runId = (response.json() as { runId: string }).runId;

    const notReady = await waitFor(
      () => harness.app.inject({ method: 'GET', url: '/readyz' }),
      (reply) => reply.statusCode === 503,
      20_000,
      '/readyz reporting the audit outage',
    );
    const problem = notReady.json() as { code: string; detail: string };
    expect(problem.code).toBe('AUDIT_UNAVAILABLE');
    expect(problem.detail).toMatch(/^the audit trail cannot be written since \d{4}-\d\d-\d\dT[0-9:.]+Z \(reported by 1 worker process\), so no rotation step starts until it can; the worker logs give the reason$/);
    expect(problem.detail).not.toContain(table);
    expect(harness.logs.join('')).toContain(`permission denied for table ${table}`);

    // Nothing ran: the run is not finished and the store has no version of the credential.
    expect((await harness.runtime.records.getRun(runId))?.status).toBe('planning');
    const store = createFileStore(harness.env);
    expect((await store.listSecrets()).map((secret) => secret.path)).toEqual([]);

    // A change the API makes itself (a force-close) fails closed too, without quoting the driver.
    const closed = await harness.app.inject({
      method: 'POST', url: '/v1/environments/demo/credentials/api-token/force-close', headers: harness.auth, payload: { reason: 'during the outage' },
    });
    expect(closed.statusCode).toBe(503);
    expect(closed.json()).toMatchObject({ code: 'AUDIT_UNAVAILABLE', detail: 'the audit trail cannot be written, so rekey changes nothing; the server log has the reason' });
    expect((await harness.runtime.records.getRun(runId))?.status).toBe('planning');

    await admin((client) => client.query(`GRANT INSERT ON ${pg.escapeIdentifier(table)} TO ${pg.escapeIdentifier(writer)}`));
    const run = await harness.waitForRun(runId, 30_000);
    expect(run.status).toBe('completed');
    expect((await harness.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect((await store.listSecrets()).map((secret) => [secret.path, secret.pendingRotationId])).toEqual([['demo/api-token', null]]);
    await store.close();

    const verification = await verifyAuditTable({ connectionString: POSTGRES_ADMIN_URL, table });
    expect(verification).toEqual({ ok: true, records: 15 });
    const steps = await admin(async (client) => (await client.query<{ step: string; outcome: string }>(
      `SELECT record->>'step' AS step, record->>'outcome' AS outcome FROM ${pg.escapeIdentifier(table)}
        WHERE record->>'outcome' IN ('requested', 'started') ORDER BY seq`,
    )).rows.map((row) => `${row.step}:${row.outcome}`));
    expect(steps).toEqual(['run:requested', 'inspect:started', 'generate:started', 'stage:started', 'apply:started', 'verify:started', 'promote:started']);
  }, 90_000);
});
