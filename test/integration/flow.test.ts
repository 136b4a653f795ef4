import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { verifyAuditFile } from '../../src/audit/index.js';
import { stepContext } from '../support/aws.js';
import { startHarness, type Harness } from '../support/harness.js';

const INVENTORY = `
environments:
  demo:
    credentials:
      - id: webhook-secret
        kind: generated-secret
        params: { bytes: 24 }
        gracePeriod: 2s
        stores:
          - store: file
            path: demo/webhook-secret
`;

describe('rotation flow through the queue', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({ inventory: INVENTORY });
  });

  afterAll(async () => {
    await harness.close();
  });

  it('rotates a generated secret and reports it', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'first rotation', mode: 'incident' } });
    expect(response.statusCode).toBe(202);
    const { runId, statusUrl } = response.json() as { runId: string; statusUrl: string };
    expect(statusUrl).toBe(`/v1/rotations/${runId}`);

    const run = await harness.waitForRun(runId);
    expect(run.status).toBe('completed');

    const status = (await harness.app.inject({ method: 'GET', url: statusUrl, headers: harness.auth })).json();
    expect(status.credentials).toHaveLength(1);
    expect(status.credentials[0]).toMatchObject({ credentialId: 'webhook-secret', jobState: 'completed', outcome: 'rotated', oldKeyId: null, step: 'promote' });
    const newKeyId = status.credentials[0].newKeyId as string;
    expect(newKeyId).toMatch(/^hmac:[0-9a-f]{16}$/);

    const store = createFileStore(harness.env);
    const metadata = await store.describe({ path: 'demo/webhook-secret' }, stepContext());
    expect(metadata.currentKeyId).toBe(newKeyId);
    expect(metadata.pendingRotationId).toBeNull();
  });

  it('deletes the old version after the grace period in scheduled mode', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'scheduled', mode: 'scheduled' } });
    const { runId } = response.json() as { runId: string };
    await harness.waitForRun(runId);
    const first = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json();
    expect(first.credentials[0].outcome).toBe('revocation-scheduled');
    expect(first.credentials[0].revokeAt).not.toBeNull();

    const deadline = Date.now() + 15_000;
    let outcome = '';
    while (Date.now() < deadline) {
      const current = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json();
      outcome = current.credentials[0].outcome as string;
      if (outcome === 'rotated') break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(outcome).toBe('rotated');

    const environment = (await harness.app.inject({ method: 'GET', url: '/v1/environments/demo', headers: harness.auth })).json();
    expect(environment.credentials[0].lastRotation).toMatchObject({ runId, outcome: 'rotated' });
    expect(environment.credentials[0].activeRotation).toBeNull();
  });

  it('joins concurrent requests into one rotation', async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, () => harness.app.inject({
      method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'burst', mode: 'incident' },
    })));
    expect(replies.map((reply) => reply.statusCode)).toEqual(Array.from({ length: 20 }, () => 202));
    const bodies = replies.map((reply) => reply.json() as { runId: string; created: boolean; credentials: Array<{ rotationId: string; joined: boolean }> });
    const runIds = new Set(bodies.map((body) => body.runId));
    expect(runIds.size).toBe(1);
    expect(bodies.filter((body) => body.created)).toHaveLength(1);
    expect(new Set(bodies.map((body) => body.credentials[0]?.rotationId)).size).toBe(1);
    expect(bodies.filter((body) => body.credentials[0]?.joined === true)).toHaveLength(19);

    const [runId] = [...runIds];
    const run = await harness.waitForRun(runId!);
    expect(run.rotations).toHaveLength(1);
    expect(run.status).toBe('completed');
  });

  it('starts a new rotation after the previous one finished', async () => {
    const first = (await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'one', mode: 'incident' } })).json() as { runId: string };
    await harness.waitForRun(first.runId);
    const second = (await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'two', mode: 'incident' } })).json() as { runId: string; created: boolean };
    expect(second.created).toBe(true);
    expect(second.runId).not.toBe(first.runId);
    expect((await harness.waitForRun(second.runId)).status).toBe('completed');
  });

  describe('when a request carries an Idempotency-Key', () => {
    const post = (key: string, reason: string) => harness.app.inject({
      method: 'POST', url: '/v1/environments/demo/rotations', headers: { ...harness.auth, 'idempotency-key': key }, payload: { reason, mode: 'incident' },
    });

    it('returns the first run for a repeated key', async () => {
      const first = await post('key-one', 'idempotent');
      await harness.waitForRun((first.json() as { runId: string }).runId);
      const second = await post('key-one', 'idempotent');
      expect(first.statusCode).toBe(202);
      expect(second.statusCode).toBe(202);
      expect(second.json()).toEqual(first.json());
    });

    it('treats the same fields in another order as the same request', async () => {
      const first = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: { ...harness.auth, 'idempotency-key': 'key-three', 'content-type': 'application/json' }, payload: '{"reason":"order","mode":"incident"}' });
      expect(first.statusCode).toBe(202);
      await harness.waitForRun((first.json() as { runId: string }).runId);
      const second = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: { ...harness.auth, 'idempotency-key': 'key-three', 'content-type': 'application/json' }, payload: '{"mode":"incident","reason":"order"}' });
      expect(second.statusCode).toBe(202);
      expect(second.json().runId).toBe(first.json().runId);
    });

    it('rejects a repeated key with another request', async () => {
      const first = await post('key-two', 'one reason');
      await harness.waitForRun((first.json() as { runId: string }).runId);
      const second = await post('key-two', 'another reason');
      expect(second.statusCode).toBe(422);
      expect(second.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    });
  });

  it('rejects revokeFirst in scheduled mode', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'r', mode: 'scheduled', revokeFirst: true } });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('INVALID_PARAMETERS');
  });

  it('pages through the audit trail', async () => {
    const first = (await harness.app.inject({ method: 'GET', url: '/v1/audit?environment=demo&limit=5', headers: harness.auth })).json() as { records: Array<{ seq: number; environment: string }>; nextAfterSeq: number | null };
    expect(first.records.map((record) => record.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(first.nextAfterSeq).toBe(5);
    const second = (await harness.app.inject({ method: 'GET', url: `/v1/audit?environment=demo&limit=5&afterSeq=${first.nextAfterSeq}`, headers: harness.auth })).json() as { records: Array<{ seq: number }> };
    expect(second.records.map((record) => record.seq)).toEqual([6, 7, 8, 9, 10]);
    const invalid = await harness.app.inject({ method: 'GET', url: '/v1/audit?limit=0', headers: harness.auth });
    expect(invalid.statusCode).toBe(400);
  });

  it('keeps an intact audit chain', async () => {
    const verification = await verifyAuditFile(harness.env.REKEY_AUDIT_FILE!);
    expect(verification.ok).toBe(true);
  });
});
