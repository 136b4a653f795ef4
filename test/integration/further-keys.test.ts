import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { startHarness, type Harness } from '../support/harness.js';
import { aclPasswordHashes, createAclUser, deleteAclUser, REDIS_ADMIN_URL, tryAuth, uniqueUserName, withRedis } from '../support/redis.js';

async function rotate(harness: Harness, mode: 'incident' | 'scheduled', dryRun = false): Promise<Record<string, unknown>> {
  const created = await harness.app.inject({ method: 'POST', url: '/v1/environments/lab/rotations', headers: harness.auth, payload: { reason: 'further keys', mode, dryRun } });
  const { runId } = created.json() as { runId: string };
  await harness.waitForRun(runId);
  return (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json();
}

describe('when a Redis user has further passwords', () => {
  const user = uniqueUserName();
  const first = randomBytes(16).toString('hex');
  const byHand = randomBytes(16).toString('hex');
  let harness: Harness;
  let afterScheduled: string;

  beforeAll(async () => {
    await createAclUser(REDIS_ADMIN_URL, user, [first]);
    harness = await startHarness({ inventory: `
environments:
  lab:
    credentials:
      - id: cache
        kind: redis-acl-password
        params: { user: ${user} }
        gracePeriod: 1h
        stores:
          - store: file
            path: lab/cache
` });
    await rotate(harness, 'scheduled');
    const stored = await createFileStore(harness.env).readCurrentValue('lab/cache');
    afterScheduled = (JSON.parse(stored?.reveal() ?? '{}') as { password: string }).password;
    await withRedis(REDIS_ADMIN_URL, (admin) => admin.call('ACL', 'SETUSER', user, `>${byHand}`));
  }, 60_000);

  afterAll(async () => {
    await harness?.close();
    await deleteAclUser(REDIS_ADMIN_URL, user).catch(() => undefined);
  });

  it('keeps the old password through the grace period of a scheduled rotation', async () => {
    expect(await tryAuth(REDIS_ADMIN_URL, user, first)).toBe('OK');
    expect(await tryAuth(REDIS_ADMIN_URL, user, afterScheduled)).toBe('OK');
  });

  it('lists the further passwords in a dry run', async () => {
    const plan = await rotate(harness, 'incident', true) as { plan: Array<{ currentKeyId: string; otherKeyIds: string[] }> };
    expect(plan.plan[0]?.otherKeyIds).toHaveLength(2);
    expect(plan.plan[0]?.otherKeyIds).not.toContain(plan.plan[0]?.currentKeyId);
  });

  it('revokes every other password in an incident rotation', async () => {
    const status = await rotate(harness, 'incident') as { status: string; credentials: Array<{ outcome: string }> };
    expect(status.status).toBe('completed');
    expect(status.credentials[0]?.outcome).toBe('rotated');

    const stored = await createFileStore(harness.env).readCurrentValue('lab/cache');
    const current = (JSON.parse(stored?.reveal() ?? '{}') as { password: string }).password;
    expect(await aclPasswordHashes(REDIS_ADMIN_URL, user)).toHaveLength(1);
    expect(await tryAuth(REDIS_ADMIN_URL, user, current)).toBe('OK');
    expect(await tryAuth(REDIS_ADMIN_URL, user, first)).toBe('WRONGPASS');
    expect(await tryAuth(REDIS_ADMIN_URL, user, afterScheduled)).toBe('WRONGPASS');
    expect(await tryAuth(REDIS_ADMIN_URL, user, byHand)).toBe('WRONGPASS');
  });
});
