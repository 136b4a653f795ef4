import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { signHmacSha256 } from '../../src/webhooks/signatures.js';
import { stepContext } from '../support/aws.js';
import { startHarness, type Harness } from '../support/harness.js';

const TRUFFLEHOG_SECRET = 'follow-up-test-secret';

describe('when the replacement leaks while its rotation runs', () => {
  let harness: Harness;
  let leaked = '';
  let findingStatus = '';
  let firstRunId = '';

  beforeAll(async () => {
    let reported = false;
    harness = await startHarness({
      inventory: `
environments:
  demo:
    credentials:
      - id: api-token
        kind: generated-secret
        stores: [{ store: file, path: demo/api-token }]
`,
      env: { REKEY_TRUFFLEHOG_WEBHOOK_SECRET: TRUFFLEHOG_SECRET },
      atBoundary: async (point) => {
        if (point !== 'verified' || reported) return;
        reported = true;
        // The staged replacement is reported as leaked before the rotation promotes it.
        const store = createFileStore(harness.env);
        const pending = (await store.listSecrets()).find((secret) => secret.path === 'demo/api-token')?.pendingRotationId;
        const value = await store.readPending({ path: 'demo/api-token' }, pending!, stepContext());
        leaked = (JSON.parse(value!.reveal()) as { secret: string }).secret;
        const body = Buffer.from(JSON.stringify({ DetectorName: 'Generic', DetectorType: 0, Verified: false, Raw: leaked }));
        const response = await harness.app.inject({
          method: 'POST', url: '/v1/webhooks/trufflehog', payload: body,
          headers: { 'content-type': 'application/json', 'x-rekey-signature-256': signHmacSha256(body, TRUFFLEHOG_SECRET) },
        });
        findingStatus = (response.json() as { results: Array<{ status: string }> }).results[0]!.status;
      },
    });
    const created = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'first', mode: 'incident' } });
    firstRunId = (created.json() as { runId: string }).runId;
    await harness.waitForRun(firstRunId);
  }, 60_000);

  afterAll(async () => {
    await harness?.close();
  });

  it('queues a follow-up for the finding', () => {
    expect(findingStatus).toBe('follow-up-queued');
  });

  it('replaces the leaked replacement with a follow-up run', async () => {
    const deadline = Date.now() + 20_000;
    let current = leaked;
    while (Date.now() < deadline && current === leaked) {
      const value = await createFileStore(harness.env).readCurrentValue('demo/api-token');
      current = (JSON.parse(value?.reveal() ?? '{}') as { secret: string }).secret;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(leaked).not.toBe('');
    expect(current).not.toBe(leaked);

    const environment = (await harness.app.inject({ method: 'GET', url: '/v1/environments/demo', headers: harness.auth })).json();
    expect(environment.credentials[0].lastRotation.runId).not.toBe(firstRunId);
    const followUp = await harness.runtime.records.getRun(environment.credentials[0].lastRotation.runId as string);
    expect(followUp?.trigger).toBe('follow-up');
  });
});
