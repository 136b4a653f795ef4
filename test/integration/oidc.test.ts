import { readFileSync } from 'node:fs';
import type { InjectOptions } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AuditRecord } from '../../src/audit/index.js';
import { TokenFileStore } from '../../src/api/tokens.js';
import { startHarness, type Harness } from '../support/harness.js';
import { startTestIssuer, unsecuredToken, type TestIssuer } from '../support/oidc.js';

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

const ROLE_MAP = {
  'rekey-viewers': 'viewer',
  'rekey-operators': 'operator',
  'rekey-admins': 'admin',
  'other-operators': { role: 'operator', environments: ['other'] },
};

function oidcEnv(issuer: TestIssuer): Record<string, string> {
  return {
    REKEY_OIDC_ISSUER: issuer.url,
    REKEY_OIDC_AUDIENCE: issuer.audience,
    REKEY_OIDC_ROLE_CLAIM: 'groups',
    REKEY_OIDC_ROLE_MAP: JSON.stringify(ROLE_MAP),
    REKEY_OIDC_CLOCK_TOLERANCE_SECONDS: '5',
  };
}

const READ: InjectOptions = { method: 'GET', url: '/v1/environments' };
const WRITE: InjectOptions = { method: 'POST', url: '/v1/environments/demo/rotations', payload: { reason: 'oidc test', mode: 'incident' } };

interface Problem {
  code: string;
  detail: string;
}

describe('OIDC bearer tokens', () => {
  let issuer: TestIssuer;
  let otherIssuer: TestIssuer;
  let harness: Harness;

  async function state(): Promise<string> {
    const keys = (await harness.runtime.redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:*`)).sort();
    return JSON.stringify({ keys, counts: await harness.runtime.queue.getJobCounts() });
  }

  async function send(request: InjectOptions, token: string) {
    return harness.app.inject({ ...request, headers: { authorization: `Bearer ${token}` } });
  }

  beforeAll(async () => {
    issuer = await startTestIssuer();
    otherIssuer = await startTestIssuer();
    harness = await startHarness({ inventory: INVENTORY, worker: false, env: oidcEnv(issuer) });
    await state();
  });

  afterAll(async () => {
    await harness?.close();
    await issuer?.close();
    await otherIssuer?.close();
  });

  describe('when the token must be rejected', () => {
    const now = (): number => Math.floor(Date.now() / 1000);
    const cases: Array<{ name: string; token: () => Promise<string>; status: number; code: string; detail: string }> = [
      {
        // The other issuer names its key rsa-1 too, so the configured issuer's rsa-1 fails to verify it.
        name: 'another issuer',
        token: () => otherIssuer.sign({ claims: { groups: ['rekey-admins'] } }),
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its signature does not verify',
      },
      {
        name: 'a foreign iss claim',
        token: () => issuer.sign({ claims: { groups: ['rekey-admins'], iss: 'https://issuer.invalid' } }),
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: it is not from the configured issuer ISSUER',
      },
      {
        name: 'an expired token',
        token: () => issuer.sign({ claims: { groups: ['rekey-admins'], iat: now() - 600, exp: now() - 60 } }),
        status: 401, code: 'TOKEN_EXPIRED', detail: 'OIDC token rejected: it has expired',
      },
      {
        name: 'a wrong audience',
        token: () => issuer.sign({ claims: { groups: ['rekey-admins'], aud: 'another-api' } }),
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its audience is not rekey-api',
      },
      {
        name: 'a bad signature',
        token: () => issuer.sign({ key: 'impostor', claims: { groups: ['rekey-admins'] } }),
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its signature does not verify',
      },
      {
        name: 'an altered payload',
        token: async () => {
          const [header, , signature] = (await issuer.sign({ claims: { groups: ['rekey-viewers'] } })).split('.');
          const forged = (await issuer.sign({ claims: { groups: ['rekey-admins'] } })).split('.')[1];
          return `${header}.${forged}.${signature}`;
        },
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its signature does not verify',
      },
      {
        name: 'an unknown kid',
        token: () => issuer.sign({ key: 'unlisted', claims: { groups: ['rekey-admins'] } }),
        status: 401, code: 'UNAUTHENTICATED', detail: "OIDC token rejected: no key of the issuer's JWKS matches its kid and algorithm",
      },
      {
        name: 'alg none',
        token: async () => unsecuredToken({ iss: issuer.url, aud: issuer.audience, sub: 'alice', exp: now() + 600, groups: ['rekey-admins'] }),
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its algorithm is not accepted; accepted: RS256, ES256',
      },
      {
        name: 'HS256 keyed with the public key',
        token: async () => new SignJWT({ iss: issuer.url, aud: issuer.audience, sub: 'alice', exp: now() + 600, groups: ['rekey-admins'] })
          .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
          .sign(new TextEncoder().encode(await issuer.rsaPublicKeyPem())),
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its algorithm is not accepted; accepted: RS256, ES256',
      },
      {
        name: 'no exp claim',
        token: () => issuer.sign({ claims: { groups: ['rekey-admins'], exp: undefined } }),
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its "exp" claim is missing',
      },
      {
        name: 'no sub claim',
        token: () => issuer.sign({ claims: { groups: ['rekey-admins'], sub: undefined } }),
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its "sub" claim is missing',
      },
      {
        name: 'a future nbf',
        token: () => issuer.sign({ claims: { groups: ['rekey-admins'], nbf: now() + 300 } }),
        status: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its "nbf" claim is invalid',
      },
      {
        name: 'no mapped group',
        token: () => issuer.sign({ claims: { groups: ['engineering', 'rekey'] } }),
        status: 403, code: 'FORBIDDEN', detail: 'oidc:alice has no rekey role: no value of its "groups" claim is in REKEY_OIDC_ROLE_MAP',
      },
      {
        name: 'no groups claim',
        token: () => issuer.sign(),
        status: 403, code: 'FORBIDDEN', detail: 'oidc:alice has no rekey role: no value of its "groups" claim is in REKEY_OIDC_ROLE_MAP',
      },
    ];

    for (const testCase of cases) {
      for (const [routeName, request] of [['read', READ], ['write', WRITE]] as const) {
        it(`rejects ${testCase.name} on a ${routeName} route`, async () => {
          const token = await testCase.token();
          const before = await state();

          const response = await send(request, token);

          expect(response.statusCode).toBe(testCase.status);
          const problem = response.json<Problem>();
          expect(problem.code).toBe(testCase.code);
          expect(problem.detail).toBe(testCase.detail.replace('ISSUER', issuer.url));
          if (testCase.status === 401) expect(response.headers['www-authenticate']).toBe('Bearer realm="rekey", error="invalid_token"');
          expect(response.body.includes(token)).toBe(false);
          expect(await state()).toBe(before);
        });
      }
    }
  });

  describe('when the token maps to a role', () => {
    it('lets a viewer read', async () => {
      const response = await send(READ, await issuer.sign({ claims: { groups: ['rekey-viewers'] } }));
      expect(response.statusCode).toBe(200);
      expect(response.json<{ environments: Array<{ name: string }> }>().environments.map((environment) => environment.name)).toEqual(['demo', 'other']);
    });

    it('keeps a viewer from rotating', async () => {
      const before = await state();
      const response = await send(WRITE, await issuer.sign({ claims: { sub: 'vera', groups: ['rekey-viewers'] } }));
      expect(response.statusCode).toBe(403);
      expect(response.json<Problem>().detail).toBe('oidc:vera has role viewer; POST /v1/environments/:environment/rotations requires operator');
      expect(await state()).toBe(before);
    });

    it('lets an operator rotate as oidc:<sub>', async () => {
      const response = await send(WRITE, await issuer.sign({ claims: { sub: 'otto', groups: ['rekey-operators'] } }));
      expect(response.statusCode).toBe(202);
      const run = await harness.runtime.records.getRun(response.json<{ runId: string }>().runId);
      expect(run?.actor).toBe('oidc:otto');
    });

    it('keeps an operator from revoking first', async () => {
      const request = { ...WRITE, payload: { reason: 'oidc test', mode: 'incident', revokeFirst: true, dryRun: true } };
      const response = await send(request, await issuer.sign({ claims: { sub: 'otto', groups: ['rekey-operators'] } }));
      expect(response.statusCode).toBe(403);
      expect(response.json<Problem>().detail).toBe('revokeFirst requires the admin role; oidc:otto has operator');
    });

    it('lets an admin revoke first', async () => {
      const request = { ...WRITE, payload: { reason: 'oidc test', mode: 'incident', revokeFirst: true, dryRun: true } };
      const response = await send(request, await issuer.sign({ key: 'ec', claims: { sub: 'ada', groups: ['rekey-admins'] } }));
      expect(response.statusCode).toBe(202);
      const run = await harness.runtime.records.getRun(response.json<{ runId: string }>().runId);
      expect(run?.actor).toBe('oidc:ada');
    });

    it('grants the highest mapped role', async () => {
      const response = await send(WRITE, await issuer.sign({ claims: { sub: 'max', groups: ['rekey-viewers', 'rekey-admins', 'engineering'] } }));
      expect(response.statusCode).toBe(202);
    });

    it('accepts a single string claim', async () => {
      const response = await send(READ, await issuer.sign({ claims: { groups: 'rekey-viewers' } }));
      expect(response.statusCode).toBe(200);
    });
  });

  describe('when the mapping limits environments', () => {
    it('rejects other environments and changes nothing', async () => {
      const before = await state();
      const response = await send(WRITE, await issuer.sign({ claims: { sub: 'olga', groups: ['other-operators'] } }));
      expect(response.statusCode).toBe(403);
      expect(response.json<Problem>().detail).toBe('oidc:olga may not act on environment "demo"');
      expect(await state()).toBe(before);
    });

    it('allows its own environment', async () => {
      const request = { ...WRITE, url: '/v1/environments/other/rotations' };
      const response = await send(request, await issuer.sign({ claims: { sub: 'olga', groups: ['other-operators'] } }));
      expect(response.statusCode).toBe(202);
    });

    it('lists only its environments', async () => {
      const response = await send(READ, await issuer.sign({ claims: { sub: 'olga', groups: ['other-operators'] } }));
      expect(response.json<{ environments: Array<{ name: string }> }>().environments.map((environment) => environment.name)).toEqual(['other']);
    });
  });

  describe('beside other tokens', () => {
    it('still accepts the bootstrap token', async () => {
      const response = await harness.app.inject({ ...READ, headers: harness.auth });
      expect(response.statusCode).toBe(200);
    });

    it('still accepts API tokens', async () => {
      const { token } = new TokenFileStore(harness.env.REKEY_TOKENS_FILE!).create({ role: 'viewer', environments: null, expiresInMs: null, description: 'beside oidc' });
      const response = await send(READ, token);
      expect(response.statusCode).toBe(200);
    });
  });

  it('fetches keys only from the configured issuer, once', () => {
    expect(issuer.requests.filter((path) => path === '/.well-known/openid-configuration')).toHaveLength(1);
    expect(issuer.requests.every((path) => path === '/.well-known/openid-configuration' || path === '/jwks')).toBe(true);
    expect(otherIssuer.requests).toEqual([]);
  });
});

describe('OIDC when the issuer is unreachable', () => {
  let issuer: TestIssuer;
  let harness: Harness;

  beforeAll(async () => {
    issuer = await startTestIssuer();
    issuer.stubs.set('/.well-known/openid-configuration', { status: 500, body: '{"error":"down"}' });
    harness = await startHarness({ inventory: INVENTORY, worker: false, env: oidcEnv(issuer) });
  });

  afterAll(async () => {
    await harness?.close();
    await issuer?.close();
  });

  it('returns 503 and recovers without a restart', async () => {
    const token = await issuer.sign({ claims: { groups: ['rekey-viewers'] } });

    const failed = await harness.app.inject({ ...READ, headers: { authorization: `Bearer ${token}` } });
    expect(failed.statusCode).toBe(503);
    expect(failed.json<Problem>().code).toBe('OIDC_UNAVAILABLE');
    expect(harness.logs.join('')).toContain('OIDC keys unavailable');

    issuer.stubs.clear();
    const repeated = await harness.app.inject({ ...READ, headers: { authorization: `Bearer ${token}` } });
    expect(repeated.statusCode).toBe(503);

    // The API repeats a failed discovery for 5 s; the test moves the clock past that instead of waiting.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 6000);
      const recovered = await harness.app.inject({ ...READ, headers: { authorization: `Bearer ${token}` } });
      expect(recovered.statusCode).toBe(200);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('OIDC audit trail', () => {
  let issuer: TestIssuer;
  let harness: Harness;

  beforeAll(async () => {
    issuer = await startTestIssuer();
    harness = await startHarness({ inventory: INVENTORY, env: oidcEnv(issuer) });
  });

  afterAll(async () => {
    await harness?.close();
    await issuer?.close();
  });

  it('records oidc:<sub> and never the token', async () => {
    const token = await issuer.sign({ claims: { sub: 'otto', groups: ['rekey-operators'] } });
    const response = await harness.app.inject({ ...WRITE, headers: { authorization: `Bearer ${token}` } });
    expect(response.statusCode).toBe(202);
    const { runId } = response.json<{ runId: string }>();
    expect((await harness.waitForRun(runId)).status).toBe('completed');

    const auditText = readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8');
    const records = auditText.trim().split('\n').map((line) => JSON.parse(line) as AuditRecord).filter((record) => record.runId === runId);
    expect(records.length).toBeGreaterThan(1);
    expect([...new Set(records.map((record) => record.actor))]).toEqual(['oidc:otto']);

    const signature = token.split('.')[2]!;
    expect(auditText.includes(signature)).toBe(false);
    expect(harness.logs.join('').includes(signature)).toBe(false);
    const run = JSON.stringify(await harness.runtime.records.getRun(runId));
    expect(run.includes(signature)).toBe(false);
  });
});
