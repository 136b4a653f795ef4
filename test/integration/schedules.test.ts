import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncSchedules } from '../../jobs/schedules.js';
import type { AuditRecord } from '../../src/audit/index.js';
import { startHarness, type Harness } from '../support/harness.js';

/*
 * A credential with `rotateEvery` is rotated by the workers on their own, through a BullMQ job
 * scheduler, without any request. A credential without it is left alone.
 */

const INVENTORY = `
environments:
  demo:
    credentials:
      - id: ticking
        kind: generated-secret
        rotateEvery: 10s
        gracePeriod: 5s
        stores: [{ store: file, path: demo/ticking }]
      - id: manual
        kind: generated-secret
        stores: [{ store: file, path: demo/manual }]
`;

function auditRecords(harness: Harness): AuditRecord[] {
  if (!existsSync(harness.env.REKEY_AUDIT_FILE!)) return [];
  return readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as AuditRecord);
}

function runRecords(harness: Harness): AuditRecord[] {
  return auditRecords(harness).filter((record) => record.step === 'run');
}

describe('rotation schedules', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({ inventory: INVENTORY });
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('rotates a scheduled credential twice without a request', async () => {
    const deadline = Date.now() + 45_000;
    let succeeded: AuditRecord[] = [];
    while (Date.now() < deadline) {
      succeeded = runRecords(harness).filter((record) => record.outcome === 'succeeded');
      if (succeeded.length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }

    expect(succeeded.length).toBeGreaterThanOrEqual(2);
    const requested = runRecords(harness).filter((record) => record.outcome === 'requested');
    expect(new Set(requested.map((record) => `${record.actor} ${record.trigger}`))).toEqual(new Set(['schedule schedule']));
    expect(new Set(requested.map((record) => (record.detail as { reason: string }).reason))).toEqual(new Set(['scheduled rotation every 10s']));
    const rotated = auditRecords(harness).filter((record) => record.step === 'promote' && record.outcome === 'succeeded');
    expect(new Set(rotated.map((record) => record.credentialId))).toEqual(new Set(['ticking']));
  }, 60_000);

  it('keeps one scheduler per scheduled credential', async () => {
    expect(await syncSchedules(harness.runtime)).toEqual(['rotate-every:demo:ticking']);
    const schedulers = await harness.runtime.queue.getJobSchedulers(0, -1);
    expect(schedulers.map((scheduler) => [scheduler.key, scheduler.every])).toEqual([['rotate-every:demo:ticking', 10_000]]);
  });
});
