import { describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import type { BoundaryPoint } from '../../src/engine/rotation.js';
import { keyInventory, startGcpTestbed, TEST_PROJECT, TEST_SECRET, tokenStatus, uniqueServiceAccount, type GcpTestbed } from '../support/gcp.js';
import { startHarness, type Harness } from '../support/harness.js';
import { rotateThroughKilledWorker } from '../support/worker-child.js';

/*
 * The kill matrix for a second minted kind: a real worker process that rotates a GCP service
 * account key is killed with SIGKILL at each step boundary, and a second worker takes the job
 * over. The fake's key list and its token endpoint then show that exactly one new key exists
 * and works, and that the old key and any key lost before staging are gone.
 */

const BOUNDARIES: BoundaryPoint[] = ['inspected', 'minted', 'staged', 'verified', 'promoted'];
const STEP_AT_BOUNDARY: Partial<Record<BoundaryPoint, string>> = { inspected: 'inspect', minted: 'mint', staged: 'stage', verified: 'verify', promoted: 'promote' };
const WORKER_ENV = { REKEY_WORKER_LOCK_MS: '2000', REKEY_WORKER_STALLED_INTERVAL_MS: '1000', REKEY_GCP_VERIFY_WINDOW_MS: '20000', REKEY_GCP_VERIFY_INTERVAL_MS: '200' };

function keyIdOf(keyFile: string): string {
  return (JSON.parse(keyFile) as { private_key_id: string }).private_key_id;
}

async function runKillCase(boundary: BoundaryPoint): Promise<void> {
  let testbed: GcpTestbed | undefined;
  let harness: Harness | undefined;
  try {
    testbed = await startGcpTestbed();
    const account = uniqueServiceAccount('killed');
    testbed.fake.createServiceAccount(account);
    const oldKeyFile = testbed.fake.addKey(account);
    testbed.fake.createSecret(TEST_PROJECT, TEST_SECRET, [oldKeyFile]);
    harness = await startHarness({ inventory: keyInventory(account), worker: false, env: { ...testbed.env, ...WORKER_ENV } });

    const result = await rotateThroughKilledWorker(harness, boundary, `gcp kill matrix: SIGKILL at ${boundary}`);

    expect(result.runStatus).toBe('completed');
    expect(result.credential.outcome).toBe('rotated');
    const newKeyId = result.credential.newKeyId;
    // Exactly one user-managed key is left: the replacement. The old key and a key lost before staging are deleted.
    expect(testbed.fake.keyStates(account)).toEqual({ [newKeyId]: 'ENABLED' });
    const latest = testbed.fake.secretVersions(TEST_PROJECT, TEST_SECRET).at(-1)!;
    expect(keyIdOf(latest.value!)).toBe(newKeyId);
    const inFile = await createFileStore(harness.env).readCurrentValue('ci/deployer-gcp');
    expect(JSON.parse(inFile!.reveal())).toEqual(JSON.parse(latest.value!));
    inFile!.wipe();
    expect((await tokenStatus(testbed.fake, latest.value!)).status).toBe(200);
    expect((await tokenStatus(testbed.fake, oldKeyFile)).status).toBe(400);

    expect(result.auditIntact).toBe(true);
    expect(result.auditRecords.find((record) => record.outcome === 'resumed')?.step).toBe(STEP_AT_BOUNDARY[boundary]);
    const minted = result.auditRecords.filter((record) => record.step === 'mint' && record.outcome === 'succeeded');
    expect(minted).toHaveLength(boundary === 'minted' ? 2 : 1);
  } finally {
    await harness?.close();
    await testbed?.close();
  }
}

describe('kill matrix for GCP service account keys', () => {
  for (const boundary of BOUNDARIES) {
    it(`recovers from a kill at ${boundary}`, () => runKillCase(boundary), 90_000);
  }
});
