import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLocation, verifyAudit } from '../../src/audit/select.js';
import { POSTGRES_ADMIN_URL, startHarness, type Harness } from '../support/harness.js';

describe('when the audit trail is a PostgreSQL table', () => {
  const table = `rekey_audit_runtime_${randomBytes(4).toString('hex')}`;
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({
      inventory: 'environments:\n  demo:\n    credentials:\n      - id: api-token\n        kind: generated-secret\n        stores: [{ store: file, path: demo/api-token }]\n',
      env: { REKEY_AUDIT_DATABASE_URL: POSTGRES_ADMIN_URL, REKEY_AUDIT_TABLE: table },
    });
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'postgres audit', mode: 'incident' } });
    await harness.waitForRun((response.json() as { runId: string }).runId);
  });

  afterAll(async () => {
    await harness?.close();
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await client.connect();
    await client.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(table)} CASCADE`);
    await client.end();
  });

  it('writes the run to the table with an intact chain', async () => {
    const location = auditLocation(harness.env);
    expect(location).toEqual({ kind: 'postgres', connectionString: POSTGRES_ADMIN_URL, table });
    const verification = await verifyAudit(location);
    expect(verification.ok).toBe(true);
    expect(verification.records).toBe(15);
  });

  it('serves the table through GET /v1/audit', async () => {
    const page = (await harness.app.inject({ method: 'GET', url: '/v1/audit?environment=demo&limit=3', headers: harness.auth })).json() as { records: Array<{ seq: number; step: string; outcome: string }> };
    expect(page.records.map((record) => [record.seq, record.step, record.outcome])).toEqual([[1, 'run', 'requested'], [2, 'inspect', 'succeeded'], [3, 'inspect', 'started']]);
  });

  it('rejects UPDATE and DELETE on the table', async () => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await client.connect();
    try {
      await expect(client.query(`UPDATE ${pg.escapeIdentifier(table)} SET hash = 'x' WHERE seq = 1`)).rejects.toThrow();
      await expect(client.query(`DELETE FROM ${pg.escapeIdentifier(table)} WHERE seq = 1`)).rejects.toThrow();
    } finally {
      await client.end();
    }
  });
});
