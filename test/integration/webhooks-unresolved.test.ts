import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signGithub } from '../../src/webhooks/signatures.js';
import { startHarness, type Harness } from '../support/harness.js';

const GITHUB_SECRET = 'unresolved-test-secret';

describe('when GitHub alerts arrive without REKEY_GITHUB_TOKEN', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({
      inventory: 'environments:\n  demo:\n    credentials:\n      - id: api-token\n        kind: generated-secret\n        stores: [{ store: file, path: demo/api-token }]\n',
      env: { REKEY_GITHUB_WEBHOOK_SECRET: GITHUB_SECRET },
      worker: false,
    });
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('records the alert as unresolved with what to do', async () => {
    const body = Buffer.from(JSON.stringify({
      action: 'created',
      alert: { number: 3, created_at: '2026-12-04T10:00:00Z', secret_type: 'generic_token', validity: 'active' },
      repository: { name: 'app', owner: { login: 'acme' } },
    }));
    const response = await harness.app.inject({
      method: 'POST', url: '/v1/webhooks/github', payload: body,
      headers: { 'content-type': 'application/json', 'x-github-event': 'secret_scanning_alert', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signGithub(body, GITHUB_SECRET) },
    });
    expect(response.statusCode).toBe(202);
    const findings = await harness.runtime.records.listFindings(10);
    expect(findings.map((finding) => [finding.status, finding.reference])).toEqual([['unresolved', 'acme/app secret scanning alert #3']]);
    expect(findings[0]?.note).toBe('the alert carries no secret and REKEY_GITHUB_TOKEN is not set, so rekey could not fetch it; set the token and redeliver the event from GitHub');
    expect(harness.logs.some((line) => line.includes('REKEY_GITHUB_WEBHOOK_SECRET is set without REKEY_GITHUB_TOKEN'))).toBe(true);
  });
});
