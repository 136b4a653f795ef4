import { readFileSync } from 'node:fs';
import type { Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { startWorker } from '../../jobs/worker.js';
import { createFileStore } from '../../providers/file-store/index.js';
import { verifyAuditFile, type AuditSink } from '../../src/audit/index.js';
import { createAuditSinkFor } from '../../src/audit/select.js';
import type { BoundaryPoint } from '../../src/engine/rotation.js';
import { startGcpTestbed, tokenStatus, uniqueServiceAccount, type GcpTestbed } from '../support/gcp.js';
import { startHarness, type Harness } from '../support/harness.js';
import { spawnWorkerChild, type WorkerChild } from '../support/worker-child.js';

/*
 * The kill matrix for a second minted kind: a real worker process that rotates a GCP service
 * account key is killed with SIGKILL at each step boundary, and a second worker takes the job
 * over. The fake's ten-key limit and its token endpoint then show that exactly one new key exists
 * and works, and that the old key and any key lost before staging are gone.
 */

const PROJECT = 'rekey-tests';
const SECRET = 'deployer-gcp';
const BOUNDARIES: BoundaryPoint[] = ['inspected', 'minted', 'staged', 'verified', 'promoted'];
const STEP_AT_BOUNDARY: Partial<Record<BoundaryPoint, string>> = { inspected: 'inspect', minted: 'mint', staged: 'stage', verified: 'verify', promoted: 'promote' };
const WORKER_ENV = { REKEY_WORKER_LOCK_MS: '2000', REKEY_WORKER_STALLED_INTERVAL_MS: '1000', REKEY_GCP_VERIFY_WINDOW_MS: '20000', REKEY_GCP_VERIFY_INTERVAL_MS: '200' };

function inventory(serviceAccount: string): string {
  return `
environments:
  ci:
    credentials:
      - id: deployer-gcp
        kind: gcp-service-account-key
        params: { serviceAccount: ${serviceAccount} }
        stores:
          - store: gcp-secret-manager
            project: ${PROJECT}
            secret: ${SECRET}
          - store: file
            path: ci/deployer-gcp
`;
}

function keyIdOf(keyFile: string): string {
  return (JSON.parse(keyFile) as { private_key_id: string }).private_key_id;
}

async function runKillCase(boundary: BoundaryPoint): Promise<void> {
  let testbed: GcpTestbed | undefined;
  let harness: Harness | undefined;
  let child: WorkerChild | undefined;
  let takeover: { worker: Worker; audit: AuditSink } | undefined;
  try {
    testbed = await startGcpTestbed();
    const account = uniqueServiceAccount('killed');
    testbed.fake.createServiceAccount(account);
    const oldKeyFile = testbed.fake.addKey(account);
    testbed.fake.createSecret(PROJECT, SECRET, [oldKeyFile]);

    harness = await startHarness({ inventory: inventory(account), worker: false, env: { ...testbed.env, ...WORKER_ENV } });
    child = spawnWorkerChild(harness.env, boundary);
    const response = await harness.app.inject({
      method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth,
      payload: { reason: `gcp kill matrix: SIGKILL at ${boundary}`, mode: 'incident' },
    });
    expect(response.statusCode, response.body).toBe(202);
    const submitted = response.json() as { runId: string; credentials: Array<{ rotationId: string }> };

    expect(await child.waitForExit(30_000), child.output()).toEqual({ code: null, signal: 'SIGKILL' });
    const audit = createAuditSinkFor(harness.env);
    takeover = { worker: startWorker({ ...harness.runtime, audit }), audit };
    const run = await harness.waitForRun(submitted.runId, 45_000);
    const status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${submitted.runId}`, headers: harness.auth })).json() as { credentials: Array<{ outcome: string; newKeyId: string }> };
    expect(run.status, JSON.stringify(status)).toBe('completed');
    expect(status.credentials[0]?.outcome).toBe('rotated');
    const newKeyId = status.credentials[0]!.newKeyId;

    // Exactly one user-managed key is left: the replacement. The old key and a key lost before staging are deleted.
    expect(testbed.fake.keyStates(account)).toEqual({ [newKeyId]: 'ENABLED' });
    const versions = testbed.fake.secretVersions(PROJECT, SECRET);
    const latest = versions.at(-1)!;
    expect(keyIdOf(latest.value!)).toBe(newKeyId);
    const inFile = await createFileStore(harness.env).readCurrentValue('ci/deployer-gcp');
    expect(JSON.parse(inFile!.reveal())).toEqual(JSON.parse(latest.value!));
    inFile!.wipe();
    expect((await tokenStatus(testbed.fake, latest.value!)).status).toBe(200);
    expect((await tokenStatus(testbed.fake, oldKeyFile)).status).toBe(400);

    await takeover.worker.close();
    await takeover.audit.close();
    const auditFile = harness.env.REKEY_AUDIT_FILE ?? '';
    expect((await verifyAuditFile(auditFile)).ok).toBe(true);
    const records = readFileSync(auditFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((record) => record.rotationId === submitted.credentials[0]?.rotationId);
    expect(records.find((record) => record.outcome === 'resumed')?.step).toBe(STEP_AT_BOUNDARY[boundary]);
    const minted = records.filter((record) => record.step === 'mint' && record.outcome === 'succeeded').length;
    expect(minted).toBe(boundary === 'minted' ? 2 : 1);
  } finally {
    child?.stop();
    await takeover?.worker.close();
    await takeover?.audit.close();
    await harness?.close();
    await testbed?.close();
  }
}

describe('kill matrix for GCP service account keys', () => {
  for (const boundary of BOUNDARIES) {
    it(`recovers from a kill at ${boundary}`, () => runKillCase(boundary), 90_000);
  }
});
