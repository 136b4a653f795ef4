import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

describe('rate limits', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({
      inventory: 'environments:\n  demo:\n    credentials:\n      - id: api-token\n        kind: generated-secret\n        stores: [{ store: file, path: demo/api-token }]\n',
      worker: false,
      env: { REKEY_RATE_LIMIT_PER_MINUTE: '5', REKEY_TRUFFLEHOG_WEBHOOK_SECRET: 'rate-limit-test-secret' },
    });
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('answers 429 as a problem after the limit of a token', async () => {
    const statuses: number[] = [];
    let last;
    for (let index = 0; index < 6; index += 1) {
      last = await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: harness.auth });
      statuses.push(last.statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(last?.headers['content-type']).toContain('application/problem+json');
    expect(last?.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
    expect(Number(last?.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('counts webhooks per source, apart from tokens', async () => {
    const statuses: number[] = [];
    for (let index = 0; index < 6; index += 1) {
      statuses.push((await harness.app.inject({ method: 'POST', url: '/v1/webhooks/trufflehog', payload: '{}', headers: { 'content-type': 'application/json' } })).statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  });

  it('never limits the health probes', async () => {
    const statuses: number[] = [];
    for (let index = 0; index < 8; index += 1) statuses.push((await harness.app.inject({ method: 'GET', url: '/healthz' })).statusCode);
    expect(statuses).toEqual(Array.from({ length: 8 }, () => 200));
  });
});

describe('failed authentications', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({
      inventory: 'environments:\n  demo:\n    credentials:\n      - id: api-token\n        kind: generated-secret\n        stores: [{ store: file, path: demo/api-token }]\n',
      worker: false,
      env: { REKEY_AUTH_FAILURES_PER_MINUTE: '3' },
    });
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('answers 429 to an address after its limit', async () => {
    const wrong = { authorization: 'Bearer rk_000000000000_not-a-real-token-value-of-forty-three-chars' };
    const statuses: number[] = [];
    for (let index = 0; index < 3; index += 1) statuses.push((await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: wrong })).statusCode);
    statuses.push((await harness.app.inject({ method: 'GET', url: '/v1/environments' })).statusCode);
    const blocked = await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: harness.auth });

    expect(statuses).toEqual([401, 401, 401, 429]);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json()).toMatchObject({ code: 'RATE_LIMITED', detail: expect.stringMatching(/^more than 3 failed authentications a minute from this address; retry in \d+ s$/) as unknown as string });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect((await harness.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('failed authentications behind a proxy', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({
      inventory: 'environments:\n  demo:\n    credentials:\n      - id: api-token\n        kind: generated-secret\n        stores: [{ store: file, path: demo/api-token }]\n',
      worker: false,
      env: { REKEY_AUTH_FAILURES_PER_MINUTE: '2', REKEY_TRUST_PROXY: '127.0.0.1' },
    });
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('counts each forwarded client apart', async () => {
    const from = (client: string) => ({ 'x-forwarded-for': client });
    const statuses: number[] = [];
    for (let index = 0; index < 3; index += 1) statuses.push((await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: from('203.0.113.7') })).statusCode);
    const other = await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: { ...from('203.0.113.8'), ...harness.auth } });

    expect(statuses).toEqual([401, 401, 429]);
    expect(other.statusCode).toBe(200);
  });
});
