import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';
import { createAclUser, deleteAclUser, REDIS_ADMIN_URL, tryAuth, uniqueUserName } from '../support/redis.js';

describe('when an incident request joins a scheduled rotation', () => {
  const user = uniqueUserName();
  const oldPassword = randomBytes(16).toString('hex');
  let harness: Harness;
  let joinReply: { runId: string; credentials: Array<{ joined: boolean; escalated: boolean }> } | undefined;
  let status: { status: string; credentials: Array<{ outcome: string; revokeAt: string | null }> };

  beforeAll(async () => {
    await createAclUser(REDIS_ADMIN_URL, user, [oldPassword]);
    harness = await startHarness({
      inventory: `
environments:
  lab:
    credentials:
      - id: cache
        kind: redis-acl-password
        params: { user: ${user} }
        gracePeriod: 1h
        stores: [{ store: file, path: lab/cache }]
`,
      atBoundary: async (point) => {
        if (point !== 'verified' || joinReply !== undefined) return;
        const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/lab/rotations', headers: harness.auth, payload: { reason: 'leak', mode: 'incident' } });
        joinReply = response.json();
      },
    });
    const created = await harness.app.inject({ method: 'POST', url: '/v1/environments/lab/rotations', headers: harness.auth, payload: { reason: 'routine', mode: 'scheduled' } });
    const { runId } = created.json() as { runId: string };
    await harness.waitForRun(runId);
    const deadline = Date.now() + 10_000;
    for (;;) {
      status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json();
      if (status.credentials[0]?.outcome === 'rotated' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 60_000);

  afterAll(async () => {
    await harness?.close();
    await deleteAclUser(REDIS_ADMIN_URL, user).catch(() => undefined);
  });

  it('tells the caller it joined and escalated', () => {
    expect(joinReply?.credentials).toEqual([expect.objectContaining({ joined: true, escalated: true })]);
  });

  it('revokes the old password without a grace period', async () => {
    expect(status.status).toBe('completed');
    expect(status.credentials[0]?.outcome).toBe('rotated');
    expect(await tryAuth(REDIS_ADMIN_URL, user, oldPassword)).toBe('WRONGPASS');
  });
});
