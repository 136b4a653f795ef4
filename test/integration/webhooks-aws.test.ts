import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { signHmacSha256 } from '../../src/webhooks/signatures.js';
import { adminIamClient, callerIdentity } from '../support/aws.js';
import { createMixedEnvironment, type MixedEnvironment } from '../support/environment.js';
import { startHarness, type Harness } from '../support/harness.js';

const TRUFFLEHOG_SECRET = 'trufflehog-test-secret';

describe('when TruffleHog reports an AWS key pair', () => {
  let iam: IAMClient;
  let environment: MixedEnvironment;
  let harness: Harness;

  async function report(raw: string, rawV2: string): Promise<Array<{ status: string; credentialId: string | null; keyId: string | null; runId: string | null }>> {
    const body = Buffer.from(JSON.stringify({ DetectorName: 'AWS', DetectorType: 2, Verified: true, Raw: raw, RawV2: rawV2, SourceName: 'trufflehog - git' }));
    const response = await harness.app.inject({
      method: 'POST', url: '/v1/webhooks/trufflehog', payload: body,
      headers: { 'content-type': 'application/json', 'x-rekey-signature-256': signHmacSha256(body, TRUFFLEHOG_SECRET) },
    });
    expect(response.statusCode).toBe(202);
    return (response.json() as { results: Array<{ status: string; credentialId: string | null; keyId: string | null; runId: string | null }> }).results;
  }

  async function storedKey(): Promise<{ accessKeyId: string; secretAccessKey: string }> {
    const value = await createFileStore(harness.env).readCurrentValue('ci/deployer-aws');
    return JSON.parse(value?.reveal() ?? '{}') as { accessKeyId: string; secretAccessKey: string };
  }

  beforeAll(async () => {
    iam = adminIamClient();
    environment = await createMixedEnvironment(iam);
    harness = await startHarness({ inventory: environment.inventory, env: { REKEY_TRUFFLEHOG_WEBHOOK_SECRET: TRUFFLEHOG_SECRET } });
    const created = await harness.app.inject({ method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth, payload: { reason: 'first', mode: 'incident', credentials: ['deployer-aws'] } });
    await harness.waitForRun((created.json() as { runId: string }).runId, 90_000);
  }, 120_000);

  afterAll(async () => {
    await harness?.close();
    await environment?.cleanup();
    iam?.destroy();
  });

  it('reports the key rekey replaced as already rotated', async () => {
    const old = environment.aws.key;
    const results = await report(old.accessKeyId, `${old.accessKeyId}${old.secretAccessKey}`);
    expect(results.map((result) => [result.status, result.credentialId, result.keyId])).toEqual([['already-rotated', 'deployer-aws', old.accessKeyId]]);
  });

  it('rotates the current key found by its key id and secret', async () => {
    const current = await storedKey();
    const results = await report(current.accessKeyId, `${current.accessKeyId}${current.secretAccessKey}`);
    expect(results.map((result) => [result.status, result.credentialId, result.keyId])).toEqual([['rotation-started', 'deployer-aws', current.accessKeyId]]);
    expect((await harness.waitForRun(results[0]!.runId!, 90_000)).status).toBe('completed');
    expect(await callerIdentity(current)).toEqual({ error: 'InvalidClientTokenId' });
    expect((await storedKey()).accessKeyId).not.toBe(current.accessKeyId);
  });
});
