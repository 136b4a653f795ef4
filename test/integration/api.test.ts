import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

const INVENTORY = `
environments:
  demo:
    credentials:
      - id: webhook-secret
        kind: generated-secret
        params: {}
        stores:
          - store: file
            path: demo/webhook-secret
`;

/** Counts every job of the harness's queue and every run record: what a rejected request must not create. */
async function enqueuedCount(harness: Harness): Promise<number> {
  const counts = await harness.runtime.queue.getJobCounts();
  const jobs = Object.values(counts).reduce((sum, count) => sum + count, 0);
  const runs = await harness.runtime.redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:run:*`);
  const claims = await harness.runtime.redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:active:*`);
  return jobs + runs.length + claims.length;
}

describe('API', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({ inventory: INVENTORY, worker: false });
  });

  afterAll(async () => {
    await harness.close();
  });

  describe('when the request is rejected', () => {
    const cases: Array<{ name: string; status: number; code: string; request: () => InjectOptions }> = [
      { name: 'missing token', status: 401, code: 'UNAUTHENTICATED', request: () => ({ method: 'POST', url: '/v1/environments/demo/rotations', payload: { reason: 'r', mode: 'incident' } }) },
      { name: 'wrong token', status: 401, code: 'UNAUTHENTICATED', request: () => ({ method: 'POST', url: '/v1/environments/demo/rotations', headers: { authorization: 'Bearer wrong-token-of-some-length' }, payload: { reason: 'r', mode: 'incident' } }) },
      { name: 'malformed header', status: 401, code: 'UNAUTHENTICATED', request: () => ({ method: 'POST', url: '/v1/environments/demo/rotations', headers: { authorization: `Basic ${harness.token}` }, payload: { reason: 'r', mode: 'incident' } }) },
      { name: 'unknown environment', status: 404, code: 'ENVIRONMENT_NOT_FOUND', request: () => ({ method: 'POST', url: '/v1/environments/nowhere/rotations', headers: harness.auth, payload: { reason: 'r', mode: 'incident' } }) },
      { name: 'malformed JSON', status: 400, code: 'INVALID_JSON', request: () => ({ method: 'POST', url: '/v1/environments/demo/rotations', headers: { ...harness.auth, 'content-type': 'application/json' }, payload: '{"reason": "r", "mode": ' }) },
      { name: 'invalid mode', status: 400, code: 'INVALID_REQUEST', request: () => ({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'r', mode: 'sometime' } }) },
      { name: 'unknown property', status: 400, code: 'INVALID_REQUEST', request: () => ({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'r', mode: 'incident', force: true } }) },
      { name: 'unknown credential', status: 400, code: 'INVALID_PARAMETERS', request: () => ({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'r', mode: 'incident', credentials: ['nope'] } }) },
      { name: 'reason with the redaction marker', status: 400, code: 'INVALID_REQUEST', request: () => ({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'key [redacted] leaked', mode: 'incident' } }) },
      { name: 'oversized body', status: 413, code: 'BODY_TOO_LARGE', request: () => ({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'r', mode: 'incident', padding: 'x'.repeat(20_000) } }) },
    ];

    for (const testCase of cases) {
      it(`answers ${testCase.status} for ${testCase.name} and enqueues nothing`, async () => {
        const response = await harness.app.inject(testCase.request());
        expect(response.statusCode).toBe(testCase.status);
        expect(response.headers['content-type']).toContain('application/problem+json');
        const problem = response.json() as { status: number; code: string; detail: string };
        expect(problem.status).toBe(testCase.status);
        expect(problem.code).toBe(testCase.code);
        expect(problem.detail.length).toBeGreaterThan(10);
        expect(await enqueuedCount(harness)).toBe(0);
      });
    }
  });

  it('names the invalid field in a validation problem', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'r', mode: 'sometime' } });
    expect(response.json().detail).toBe('body.mode must be one of "scheduled", "incident"');
  });

  it('serves health probes without a token', async () => {
    const health = await harness.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    const ready = await harness.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().environments).toBe(1);
  });

  it('requires a token for the environment list', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/v1/environments' });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="rekey"');
  });

  it('lists environments with their credentials', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/v1/environments/demo', headers: harness.auth });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      name: 'demo',
      description: null,
      credentials: [{
        id: 'webhook-secret', kind: 'generated-secret', description: null, params: {}, gracePeriodSeconds: 3600,
        stores: [{ store: 'file', path: 'demo/webhook-secret' }], lastRotation: null, activeRotation: null,
      }],
    });
  });

  it('answers 404 for an unknown run', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/v1/rotations/00000000-0000-4000-8000-000000000000', headers: harness.auth });
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('RUN_NOT_FOUND');
  });
});
