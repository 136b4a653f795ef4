import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { signGitGuardian, signGithub, signHmacSha256 } from '../../src/webhooks/signatures.js';
import { FakeGithubApi } from '../fakes/github.js';
import { startHarness, type Harness } from '../support/harness.js';

const GITHUB_SECRET = "It's a Secret to Everybody";
const GITHUB_TOKEN = `ghp_${randomBytes(16).toString('hex')}`;
const TRUFFLEHOG_SECRET = randomBytes(24).toString('hex');
const GITGUARDIAN_TOKEN = randomBytes(24).toString('hex');

const INVENTORY = `
environments:
  demo:
    credentials:
      - id: api-token
        kind: generated-secret
        stores:
          - store: file
            path: demo/api-token
`;

interface DeliveryReply {
  deliveryId: string;
  duplicate: boolean;
  results: Array<{ matched: boolean; status: string; credentialId: string | null; runId: string | null }>;
}

describe('scanner webhooks', () => {
  let github: FakeGithubApi;
  let harness: Harness;
  const responses: string[] = [];
  const canary = `canary-${randomBytes(20).toString('hex')}`;

  async function currentToken(): Promise<string> {
    const value = await createFileStore(harness.env).readCurrentValue('demo/api-token');
    return (JSON.parse(value?.reveal() ?? '{}') as { secret: string }).secret;
  }

  async function rotateAndWait(): Promise<void> {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'setup', mode: 'incident' } });
    await harness.waitForRun((response.json() as { runId: string }).runId);
  }

  async function postTruffleHog(lines: object[]): Promise<{ statusCode: number; body: DeliveryReply }> {
    const body = Buffer.from(lines.map((line) => JSON.stringify(line)).join('\n'));
    const response = await harness.app.inject({
      method: 'POST', url: '/v1/webhooks/trufflehog', payload: body,
      headers: { 'content-type': 'application/x-ndjson', 'x-rekey-signature-256': signHmacSha256(body, TRUFFLEHOG_SECRET) },
    });
    responses.push(response.body);
    return { statusCode: response.statusCode, body: response.json() as DeliveryReply };
  }

  function truffleHogFinding(raw: string): object {
    return { SourceName: 'trufflehog - filesystem', DetectorType: 0, DetectorName: 'Generic', Verified: false, Raw: raw, RawV2: '', Redacted: '' };
  }

  function githubDelivery(alertNumber: number): Buffer {
    return Buffer.from(JSON.stringify({
      action: 'created',
      alert: { number: alertNumber, created_at: new Date().toISOString(), secret_type: 'generic_token', secret_type_display_name: 'Generic token', validity: 'active', html_url: `https://github.example/acme/app/security/secret-scanning/${alertNumber}` },
      repository: { name: 'app', full_name: 'acme/app', owner: { login: 'acme' } },
      sender: { login: 'github' },
    }));
  }

  async function runCount(): Promise<number> {
    return (await harness.runtime.redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:run:*`)).length;
  }

  beforeAll(async () => {
    github = await FakeGithubApi.start({ tokens: [GITHUB_TOKEN] });
    harness = await startHarness({
      inventory: INVENTORY,
      env: {
        REKEY_GITHUB_WEBHOOK_SECRET: GITHUB_SECRET, REKEY_GITHUB_API_URL: github.baseUrl, REKEY_GITHUB_TOKEN: GITHUB_TOKEN,
        REKEY_TRUFFLEHOG_WEBHOOK_SECRET: TRUFFLEHOG_SECRET, REKEY_GITGUARDIAN_WEBHOOK_TOKEN: GITGUARDIAN_TOKEN,
      },
    });
    await rotateAndWait();
  }, 60_000);

  afterAll(async () => {
    await harness?.close();
    await github?.close();
  });

  describe('when a signature is wrong', () => {
    const body = githubDelivery(1);
    const cases: Array<[string, Record<string, string>]> = [
      ['missing', {}],
      ['wrong', { 'x-hub-signature-256': signGithub(body, 'another secret') }],
      ['reformatted', { 'x-hub-signature-256': signGithub(body, GITHUB_SECRET).toUpperCase() }],
      ['of another body', { 'x-hub-signature-256': signGithub(Buffer.from('Hello, World!'), GITHUB_SECRET) }],
    ];
    for (const [name, signature] of cases) {
      it(`rejects a ${name} GitHub signature and changes nothing`, async () => {
        const runsBefore = await runCount();
        const response = await harness.app.inject({
          method: 'POST', url: '/v1/webhooks/github', payload: body,
          headers: { 'content-type': 'application/json', 'x-github-event': 'secret_scanning_alert', 'x-github-delivery': randomUUID(), ...signature },
        });
        expect(response.statusCode).toBe(401);
        expect(response.json().code).toBe('INVALID_SIGNATURE');
        expect(await runCount()).toBe(runsBefore);
        expect(await harness.runtime.records.listFindings(1000)).toEqual([]);
      });
    }

    it('accepts the signature of the published GitHub example', () => {
      expect(signGithub(Buffer.from('Hello, World!'), GITHUB_SECRET)).toBe('sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17');
    });

    it('rejects a GitGuardian delivery with a stale timestamp', async () => {
      const payload = Buffer.from(readFileSync('test/fixtures/webhooks/gitguardian-incident-triggered.json'));
      const stale = String(Math.floor(Date.now() / 1000) - 3600);
      const response = await harness.app.inject({
        method: 'POST', url: '/v1/webhooks/gitguardian', payload,
        headers: { 'content-type': 'application/json', timestamp: stale, 'gitguardian-signature': signGitGuardian(payload, GITGUARDIAN_TOKEN, stale) },
      });
      expect(response.statusCode).toBe(401);
      expect(response.json().detail).toBe('GitGuardian signature rejected: timestamp outside the allowed skew');
    });

    it('rejects an oversized body before checking it', async () => {
      const response = await harness.app.inject({ method: 'POST', url: '/v1/webhooks/trufflehog', payload: Buffer.alloc(1024 * 1024 + 1, 0x20), headers: { 'content-type': 'application/json' } });
      expect(response.statusCode).toBe(413);
      expect(response.json().detail).toBe('request body exceeds the limit of 1048576 bytes');
    });

    it('rejects a TruffleHog batch without a signature', async () => {
      const response = await harness.app.inject({ method: 'POST', url: '/v1/webhooks/trufflehog', payload: JSON.stringify(truffleHogFinding(canary)), headers: { 'content-type': 'application/json' } });
      expect(response.statusCode).toBe(401);
    });
  });

  describe('when TruffleHog reports findings', () => {
    it('records a value that matches nothing', async () => {
      const reply = await postTruffleHog([truffleHogFinding(canary)]);
      expect(reply.statusCode).toBe(202);
      expect(reply.body.results.map((result) => [result.matched, result.status])).toEqual([[false, 'unmatched']]);
    });

    it('rotates the credential whose current value leaked', async () => {
      const leaked = await currentToken();
      const reply = await postTruffleHog([truffleHogFinding(leaked)]);
      expect(reply.body.results.map((result) => [result.matched, result.status, result.credentialId])).toEqual([[true, 'rotation-started', 'api-token']]);
      const run = await harness.waitForRun(reply.body.results[0]!.runId!);
      expect(run.status).toBe('completed');
      expect(run.trigger).toBe('webhook:trufflehog');
      expect(await currentToken()).not.toBe(leaked);

      const again = await postTruffleHog([truffleHogFinding(leaked), truffleHogFinding(canary)]);
      expect(again.body.results.map((result) => [result.matched, result.status])).toEqual([[true, 'already-rotated'], [false, 'unmatched']]);
    });

    it('returns the first reply for a repeated batch', async () => {
      const first = await postTruffleHog([truffleHogFinding(`other-${canary}`)]);
      const second = await postTruffleHog([truffleHogFinding(`other-${canary}`)]);
      expect(second.body.duplicate).toBe(true);
      expect(second.body.results).toEqual(first.body.results);
    });
  });

  describe('when a key within its grace period leaks', () => {
    it('deletes it at once instead of at the end of the grace period', async () => {
      const leaked = await currentToken();
      const created = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'routine', mode: 'scheduled' } });
      const { runId } = created.json() as { runId: string };
      await harness.waitForRun(runId);
      const before = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json();
      expect(before.credentials[0].outcome).toBe('revocation-scheduled');

      const reply = await postTruffleHog([truffleHogFinding(leaked)]);
      expect(reply.body.results.map((result) => [result.status, result.runId])).toEqual([['revoke-expedited', runId]]);

      const deadline = Date.now() + 10_000;
      let outcome = '';
      while (Date.now() < deadline && outcome !== 'rotated') {
        outcome = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json().credentials[0].outcome as string;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(outcome).toBe('rotated');
    });
  });

  describe('when GitHub delivers one alert twenty times at once', () => {
    it('starts exactly one rotation that every reply names', async () => {
      github.addAlert({ owner: 'acme', repo: 'app', number: 7, secret: await currentToken(), secretType: 'generic_token' });
      const runsBefore = await runCount();
      const body = githubDelivery(7);
      const deliveryId = randomUUID();
      const replies = await Promise.all(Array.from({ length: 20 }, () => harness.app.inject({
        method: 'POST', url: '/v1/webhooks/github', payload: body,
        headers: { 'content-type': 'application/json', 'x-github-event': 'secret_scanning_alert', 'x-github-delivery': deliveryId, 'x-hub-signature-256': signGithub(body, GITHUB_SECRET) },
      })));
      responses.push(...replies.map((reply) => reply.body));

      expect(replies.map((reply) => reply.statusCode)).toEqual(Array.from({ length: 20 }, () => 202));
      const bodies = replies.map((reply) => reply.json() as DeliveryReply);
      const runIds = new Set(bodies.map((reply) => reply.results[0]?.runId));
      expect(runIds.size).toBe(1);
      expect([...runIds][0]).toMatch(/^[0-9a-f-]{36}$/);
      expect(bodies.filter((reply) => !reply.duplicate)).toHaveLength(1);
      expect(await runCount()).toBe(runsBefore + 1);
      expect(github.requestCount).toBe(1);
      await harness.waitForRun([...runIds][0]!);
    });

    it('starts a new rotation for a leak found after the last one finished', async () => {
      const leaked = await currentToken();
      github.addAlert({ owner: 'acme', repo: 'app', number: 8, secret: leaked, secretType: 'generic_token' });
      const body = githubDelivery(8);
      const response = await harness.app.inject({
        method: 'POST', url: '/v1/webhooks/github', payload: body,
        headers: { 'content-type': 'application/json', 'x-github-event': 'secret_scanning_alert', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signGithub(body, GITHUB_SECRET) },
      });
      responses.push(response.body);
      const result = (response.json() as DeliveryReply).results[0];
      expect(result?.status).toBe('rotation-started');
      expect((await harness.waitForRun(result!.runId!)).status).toBe('completed');
      expect(await currentToken()).not.toBe(leaked);
    });
  });

  describe('when GitHub sends a delivery in other ways', () => {
    it('reads a form-encoded delivery', async () => {
      github.addAlert({ owner: 'acme', repo: 'app', number: 21, secret: `unknown-${canary}`, secretType: 'generic_token' });
      const body = Buffer.from(`payload=${encodeURIComponent(githubDelivery(21).toString('utf8'))}`);
      const response = await harness.app.inject({
        method: 'POST', url: '/v1/webhooks/github', payload: body,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-github-event': 'secret_scanning_alert', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signGithub(body, GITHUB_SECRET) },
      });
      responses.push(response.body);
      expect(response.statusCode).toBe(202);
      expect((response.json() as DeliveryReply).results.map((result) => result.status)).toEqual(['unmatched']);
    });

    it('does not process a replay under a new delivery id', async () => {
      github.addAlert({ owner: 'acme', repo: 'app', number: 22, secret: `replayed-${canary}`, secretType: 'generic_token' });
      const body = githubDelivery(22);
      const send = () => harness.app.inject({
        method: 'POST', url: '/v1/webhooks/github', payload: body,
        headers: { 'content-type': 'application/json', 'x-github-event': 'secret_scanning_alert', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signGithub(body, GITHUB_SECRET) },
      });
      const fetchesBefore = github.requestCount;
      const first = (await send()).json() as DeliveryReply;
      const replay = (await send()).json() as DeliveryReply;
      expect(replay.results).toEqual(first.results);
      expect(github.requestCount).toBe(fetchesBefore + 1);
    });
  });

  describe('when a canary value is posted', () => {
    it('keeps it out of logs, audit, Redis and responses', async () => {
      const findings = (await harness.app.inject({ method: 'GET', url: '/v1/findings', headers: harness.auth }));
      responses.push(findings.body);
      expect(findings.json().findings.length).toBeGreaterThan(3);

      const redis = harness.runtime.redis;
      const keys = await redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:*`);
      let dump = keys.join('\n');
      for (const key of keys) {
        const type = await redis.type(key);
        if (type === 'string') dump += await redis.get(key);
        else if (type === 'hash') dump += JSON.stringify(await redis.hgetall(key));
        else if (type === 'list') dump += (await redis.lrange(key, 0, -1)).join('\n');
      }
      const places: Record<string, string> = {
        logs: harness.logs.join(''),
        audit: readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8'),
        redis: dump,
        responses: responses.join('\n'),
      };
      for (const [place, text] of Object.entries(places)) expect(text.includes(canary), place).toBe(false);
    });
  });
});
