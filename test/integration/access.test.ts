import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenFileStore } from '../../src/api/tokens.js';
import { startHarness, type Harness } from '../support/harness.js';

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

const ADVISORY = { id: 'MAL-2026-2001', affected: [{ package: { ecosystem: 'npm', name: 'nothing-here' }, versions: ['1.0.0'] }] };

/** Every authenticated route, with the least role it requires and a request that role may send. */
const ROUTES: Array<{ name: string; role: 'viewer' | 'operator' | 'admin'; environment: string | null; request: InjectOptions }> = [
  { name: 'list environments', role: 'viewer', environment: null, request: { method: 'GET', url: '/v1/environments' } },
  { name: 'show environment', role: 'viewer', environment: 'demo', request: { method: 'GET', url: '/v1/environments/demo' } },
  { name: 'show run', role: 'viewer', environment: null, request: { method: 'GET', url: '/v1/rotations/00000000-0000-4000-8000-000000000000' } },
  { name: 'list findings', role: 'viewer', environment: null, request: { method: 'GET', url: '/v1/findings' } },
  { name: 'list dependencies', role: 'viewer', environment: 'demo', request: { method: 'GET', url: '/v1/environments/demo/dependencies' } },
  { name: 'start rotation', role: 'operator', environment: 'demo', request: { method: 'POST', url: '/v1/environments/demo/rotations', payload: { reason: 'access test', mode: 'incident', dryRun: true } } },
  { name: 'upload dependencies', role: 'operator', environment: 'demo', request: { method: 'PUT', url: '/v1/environments/demo/dependencies?file=requirements.txt', headers: { 'content-type': 'text/plain' }, payload: 'requests==2.31.0\n' } },
  { name: 'delete dependencies', role: 'operator', environment: 'demo', request: { method: 'DELETE', url: '/v1/environments/demo/dependencies/none.txt' } },
  { name: 'post advisory', role: 'operator', environment: null, request: { method: 'POST', url: '/v1/advisories?dryRun=true', payload: ADVISORY } },
  { name: 'revoke first', role: 'admin', environment: 'demo', request: { method: 'POST', url: '/v1/environments/demo/rotations', payload: { reason: 'access test', mode: 'incident', revokeFirst: true, dryRun: true } } },
  { name: 'force-close', role: 'admin', environment: 'demo', request: { method: 'POST', url: '/v1/environments/demo/credentials/api-token/force-close', payload: { reason: 'access test' } } },
];

describe('access control', () => {
  let harness: Harness;
  const tokens: Record<string, string> = {};

  async function state(): Promise<string> {
    const keys = (await harness.runtime.redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:*`)).sort();
    const counts = await harness.runtime.queue.getJobCounts();
    return JSON.stringify({ keys, counts });
  }

  function send(route: (typeof ROUTES)[number], authorization: string | undefined): Promise<{ statusCode: number; json: () => { code: string; detail: string } }> {
    const headers = { ...(route.request.headers as Record<string, string> | undefined), ...(authorization === undefined ? {} : { authorization }) };
    return harness.app.inject({ ...route.request, headers });
  }

  beforeAll(async () => {
    harness = await startHarness({ inventory: INVENTORY, worker: false });
    const store = new TokenFileStore(harness.env.REKEY_TOKENS_FILE!);
    tokens.viewer = store.create({ role: 'viewer', environments: null, expiresInMs: null, description: 'test' }).token;
    tokens.operator = store.create({ role: 'operator', environments: null, expiresInMs: null, description: 'test' }).token;
    tokens.admin = store.create({ role: 'admin', environments: null, expiresInMs: null, description: 'test' }).token;
    tokens.scoped = store.create({ role: 'operator', environments: ['other'], expiresInMs: null, description: 'test' }).token;
    tokens.expired = store.create({ role: 'admin', environments: null, expiresInMs: -1000, description: 'test' }).token;
    // BullMQ writes its queue metadata on first use; do that before comparing states.
    await state();
  });

  afterAll(async () => {
    await harness?.close();
  });

  describe('when the token is not valid', () => {
    const cases: Array<[string, () => string | undefined, string]> = [
      ['missing', () => undefined, 'UNAUTHENTICATED'],
      ['malformed', () => `Token ${tokens.admin}`, 'UNAUTHENTICATED'],
      ['wrong', () => `Bearer rk_000000000000_${'A'.repeat(43)}`, 'UNAUTHENTICATED'],
      ['altered', () => `Bearer ${tokens.admin!.slice(0, -1)}${tokens.admin!.endsWith('A') ? 'B' : 'A'}`, 'UNAUTHENTICATED'],
      ['expired', () => `Bearer ${tokens.expired}`, 'TOKEN_EXPIRED'],
    ];
    for (const [name, authorization, code] of cases) {
      it(`rejects a ${name} token on every route and changes nothing`, async () => {
        for (const route of ROUTES) {
          const before = await state();
          const response = await send(route, authorization());
          expect(response.statusCode, route.name).toBe(401);
          expect(response.json().code, route.name).toBe(code);
          expect(await state(), route.name).toBe(before);
        }
      });
    }
  });

  describe('when the role is too low', () => {
    for (const holder of ['viewer', 'operator'] as const) {
      it(`rejects ${holder} on routes above it and changes nothing`, async () => {
        const above = ROUTES.filter((route) => (holder === 'viewer' ? route.role !== 'viewer' : route.role === 'admin'));
        expect(above.length).toBeGreaterThan(0);
        for (const route of above) {
          const before = await state();
          const response = await send(route, `Bearer ${tokens[holder]}`);
          expect(response.statusCode, route.name).toBe(403);
          expect(response.json().code, route.name).toBe('FORBIDDEN');
          expect(await state(), route.name).toBe(before);
        }
      });
    }
  });

  it('lets each role call the routes it may', async () => {
    for (const holder of ['viewer', 'operator', 'admin'] as const) {
      const allowed = ROUTES.filter((route) => holder === 'admin' || route.role === 'viewer' || (holder === 'operator' && route.role === 'operator'));
      for (const route of allowed) {
        const response = await send(route, `Bearer ${tokens[holder]}`);
        expect([200, 202, 204, 404, 409], `${holder} ${route.name}`).toContain(response.statusCode);
        if (response.statusCode === 404) expect(['RUN_NOT_FOUND', 'DEPENDENCY_FILE_NOT_FOUND'], `${holder} ${route.name}`).toContain(response.json().code);
        // The credential has no rotation, so a force-close that passed the checks finds nothing to close.
        if (response.statusCode === 409) expect(response.json().code, `${holder} ${route.name}`).toBe('NOTHING_TO_CLOSE');
      }
    }
  });

  describe('when a token is limited to one environment', () => {
    it('rejects routes of other environments and changes nothing', async () => {
      for (const route of ROUTES.filter((candidate) => candidate.environment === 'demo' && candidate.role !== 'admin')) {
        const before = await state();
        const response = await send(route, `Bearer ${tokens.scoped}`);
        expect(response.statusCode, route.name).toBe(403);
        expect(await state(), route.name).toBe(before);
      }
    });

    it('lists only its environments', async () => {
      const response = await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: { authorization: `Bearer ${tokens.scoped}` } });
      expect((response.json() as { environments: Array<{ name: string }> }).environments.map((environment) => environment.name)).toEqual(['other']);
    });

    it('may not post an advisory', async () => {
      const response = await harness.app.inject({ method: 'POST', url: '/v1/advisories?dryRun=true', headers: { authorization: `Bearer ${tokens.scoped}` }, payload: ADVISORY });
      expect(response.statusCode).toBe(403);
    });

    it('records the token as the actor of its runs', async () => {
      const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/other/rotations', headers: { authorization: `Bearer ${tokens.scoped}` }, payload: { reason: 'scoped', mode: 'incident' } });
      expect(response.statusCode).toBe(202);
      const run = await harness.runtime.records.getRun((response.json() as { runId: string }).runId);
      expect(run?.actor).toBe(`token:${tokens.scoped!.slice(3, 15)}`);
    });
  });

  it('stores only hashes in the token file', async () => {
    const { readFileSync, statSync } = await import('node:fs');
    const text = readFileSync(harness.env.REKEY_TOKENS_FILE!, 'utf8');
    for (const token of Object.values(tokens)) expect(text.includes(token)).toBe(false);
    expect(statSync(harness.env.REKEY_TOKENS_FILE!).mode & 0o777).toBe(0o600);
  });
});
