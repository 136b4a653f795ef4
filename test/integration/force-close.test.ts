import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Job, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleFinding } from '../../jobs/findings.js';
import type { ForceCloseResult } from '../../jobs/force-close.js';
import { createRuntime } from '../../jobs/runtime.js';
import { JOB, type RotateJobData, type RunRecord } from '../../jobs/types.js';
import { createFileStore } from '../../providers/file-store/index.js';
import { PROVIDERS, STORES } from '../../providers/registry.js';
import { buildServer } from '../../src/api/server.js';
import { TokenFileStore } from '../../src/api/tokens.js';
import { verifyAuditFile, type AuditRecord } from '../../src/audit/index.js';
import type { CredentialProvider, Env, StepContext } from '../../src/contracts.js';
import { initialRotationState } from '../../src/engine/state.js';
import { RekeyError } from '../../src/errors.js';
import { Registry, type ProviderEntry } from '../../src/registry.js';
import { SecretValue } from '../../src/secret.js';
import { startHarness, type Harness } from '../support/harness.js';

const CLI = resolve('dist/src/cli/main.js');

const CREDENTIALS = ['busy-secret', 'fenced-secret', 'delayed-secret', 'api-only-secret', 'raced-secret', 'stalled-secret', 'cli-secret', 'preflight-secret', 'pair-one', 'pair-two', 'revoke-secret', 'idle-secret'];

const INVENTORY = `
environments:
  demo:
    credentials:
${CREDENTIALS.map((id) => `      - id: ${id}
        kind: generated-secret
        stores: [{ store: file, path: demo/${id} }]`).join('\n')}
  other:
    credentials:
      - id: other-secret
        kind: generated-secret
        stores: [{ store: file, path: other/other-secret }]
`;

/** Credentials whose revoke fails: retryable inside the rotation, then for good in the revoke job. */
const failingRevokes = new Set<string>();
const revokeCalls = new Map<string, number>();

/** The inline revoke attempts of a rotation (INLINE_REVOKE_ATTEMPTS in the engine). */
const INLINE_REVOKE_ATTEMPTS = 3;

async function revokeOrFail(real: CredentialProvider, params: Record<string, unknown>, keyId: string, ctx: StepContext): Promise<void> {
  if (!failingRevokes.has(ctx.credentialId)) return real.revoke(params, keyId, ctx);
  const calls = (revokeCalls.get(ctx.credentialId) ?? 0) + 1;
  revokeCalls.set(ctx.credentialId, calls);
  // Retryable errors move the revoke to a job of its own; a non-retryable one there fails it for good.
  if (calls <= INLINE_REVOKE_ATTEMPTS) throw new RekeyError('UNAVAILABLE', 'the test provider is unavailable');
  throw new RekeyError('PERMISSION_DENIED', 'the test provider denies the revoke');
}

function registryWithFailingRevoke(env: Env): Registry {
  const providers: ProviderEntry[] = PROVIDERS.map((entry) => ({
    ...entry,
    create: (providerEnv: Env): CredentialProvider => {
      const real = entry.create(providerEnv);
      return new Proxy(real, {
        get(target, property) {
          if (property === 'revoke') return (params: Record<string, unknown>, keyId: string, ctx: StepContext) => revokeOrFail(target, params, keyId, ctx);
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  }));
  return new Registry(env, providers, STORES);
}

/** A gate that stops rotations at their first step boundary until it opens. */
let gate: { reached: () => void; opened: Promise<void> } | null = null;

function closeGate(): { reached: Promise<void>; open: () => void } {
  let reached!: () => void;
  let open!: () => void;
  const reachedPromise = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  gate = { reached, opened };
  return { reached: reachedPromise, open: () => {
    gate = null;
    open();
  } };
}

async function waitUntil<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('force-close of a stuck rotation', () => {
  let harness: Harness;
  let adminToken: string;
  let adminActor: string;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    harness = await startHarness({
      inventory: INVENTORY,
      registry: registryWithFailingRevoke,
      atBoundary: async () => {
        if (gate === null) return;
        gate.reached();
        await gate.opened;
      },
    });
    const store = new TokenFileStore(harness.env.REKEY_TOKENS_FILE!);
    const admin = store.create({ role: 'admin', environments: null, expiresInMs: null, description: 'force-close test' });
    adminToken = admin.token;
    adminActor = `token:${admin.stored.id}`;
    tokens.viewer = store.create({ role: 'viewer', environments: null, expiresInMs: null, description: 'test' }).token;
    tokens.operator = store.create({ role: 'operator', environments: null, expiresInMs: null, description: 'test' }).token;
    tokens.scopedAdmin = store.create({ role: 'admin', environments: ['other'], expiresInMs: null, description: 'test' }).token;
  });

  afterAll(async () => {
    gate = null;
    await harness?.close();
  });

  function forceClose(credentialId: string, reason: string, token = adminToken, app = harness.app) {
    return app.inject({
      method: 'POST',
      url: `/v1/environments/demo/credentials/${credentialId}/force-close`,
      headers: { authorization: `Bearer ${token}` },
      payload: { reason },
    });
  }

  async function rotate(credentialId: string, mode: 'incident' | 'scheduled' = 'incident'): Promise<{ runId: string; rotationId: string }> {
    const response = await harness.app.inject({
      method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'force-close test', mode, credentials: [credentialId] },
    });
    expect(response.statusCode).toBe(202);
    const body = response.json() as { runId: string; credentials: Array<{ rotationId: string; joined: boolean }> };
    expect(body.credentials[0]?.joined).toBe(false);
    return { runId: body.runId, rotationId: body.credentials[0]!.rotationId };
  }

  /** Rotates the credential anew and returns the run's status, which must show it rotated. */
  async function rotateToCompletion(credentialId: string): Promise<{ runId: string; outcome: string }> {
    const { runId } = await rotate(credentialId);
    const run = await harness.waitForRun(runId);
    expect(run.status).toBe('completed');
    const status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json() as { credentials: Array<{ outcome: string }> };
    return { runId, outcome: status.credentials[0]!.outcome };
  }

  async function jobState(jobId: string): Promise<string | null> {
    const job = await Job.fromId(harness.runtime.queue, jobId);
    return job === undefined ? null : job.getState();
  }

  function auditRecords(rotationId: string): AuditRecord[] {
    return readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8').trim().split('\n')
      .map((line) => JSON.parse(line) as AuditRecord)
      .filter((record) => record.rotationId === rotationId && record.detail?.action === 'force-close');
  }

  /** Everything force-close could change for a credential, as text. */
  async function snapshot(credentialId: string, rotationId: string): Promise<string> {
    const records = harness.runtime.records;
    return JSON.stringify({
      claim: await records.activeRotation('demo', credentialId),
      last: await records.lastRotation('demo', credentialId),
      rotate: await jobState(rotationId),
      revoke: await jobState(`revoke-${rotationId}`),
      audit: auditRecords(rotationId).length,
    });
  }

  /** Leaves a claimed rotation whose rotate job waits for a retry an hour away, as a backoff would. */
  async function delayedRotation(credentialId: string): Promise<{ runId: string; rotationId: string }> {
    const runId = randomUUID();
    const rotationId = randomUUID();
    expect(await harness.runtime.records.claim('demo', credentialId, runId, rotationId)).toBeNull();
    const run: RunRecord = {
      runId, environment: 'demo', mode: 'incident', revokeFirst: false, dryRun: false, reason: 'stuck', actor: 'bootstrap-admin', trigger: 'api',
      createdAt: new Date().toISOString(), status: 'running', rotations: [{ credentialId, rotationId }], plan: [], finishedAt: null, error: null,
    };
    await harness.runtime.records.saveRun(run);
    const data: RotateJobData = {
      runId, rotationId, environment: 'demo', credentialId, mode: 'incident', revokeFirst: false, actor: 'bootstrap-admin', trigger: 'api', state: initialRotationState(),
    };
    await harness.runtime.queue.add(JOB.rotate, data, { jobId: rotationId, delay: 3_600_000, attempts: 5 });
    expect(await jobState(rotationId)).toBe('delayed');
    return { runId, rotationId };
  }

  describe('when a worker runs the rotate job', () => {
    it('answers 409 and changes nothing', async () => {
      const gated = closeGate();
      const { runId, rotationId } = await rotate('busy-secret');
      await gated.reached;
      const before = await snapshot('busy-secret', rotationId);

      const response = await forceClose('busy-secret', 'the worker looks slow');

      expect(response.statusCode).toBe(409);
      expect(response.json().code).toBe('WORKER_ACTIVE');
      expect(response.json().detail).toContain(`rotate job ${rotationId}`);
      expect(await snapshot('busy-secret', rotationId)).toBe(before);
      expect(JSON.parse(before).rotate).toBe('active');

      gated.open();
      const run = await harness.waitForRun(runId);
      expect(run.status).toBe('completed');
      expect(await harness.runtime.records.activeRotation('demo', 'busy-secret')).toBeNull();
    });
  });

  describe('when the rotate job failed for good and kept its claim', () => {
    let closed: ForceCloseResult;
    let rotationId: string;

    beforeAll(async () => {
      // The worker loses the rotation's fence while it waits at a step boundary, as when another
      // worker took it over and died: its job fails for good and the claim is never released.
      const gated = closeGate();
      ({ rotationId } = await rotate('fenced-secret'));
      await gated.reached;
      await harness.runtime.records.takeFence(rotationId);
      gated.open();
      await waitUntil('the rotate job to fail', async () => (await jobState(rotationId)) === 'failed');
      expect(await harness.runtime.records.activeRotation('demo', 'fenced-secret')).toMatchObject({ rotationId });

      const response = await forceClose('fenced-secret', 'rotate job failed after losing its fence');
      expect(response.statusCode).toBe(200);
      closed = response.json() as ForceCloseResult;
    });

    it('removes the failed job and releases the claim', async () => {
      expect(closed).toMatchObject({ environment: 'demo', credentialId: 'fenced-secret', rotationId, closed: 'claim', releasedClaim: true, previousOutcome: 'in-progress' });
      expect(closed.removedJobs).toEqual([{ id: rotationId, name: JOB.rotate, state: 'failed' }]);
      expect(await jobState(rotationId)).toBeNull();
      expect(await harness.runtime.records.activeRotation('demo', 'fenced-secret')).toBeNull();
    });

    it('records the last rotation as force-closed', async () => {
      const last = await harness.runtime.records.lastRotation('demo', 'fenced-secret');
      expect(last).toMatchObject({ rotationId, outcome: 'force-closed', forceClosed: { actor: adminActor, reason: 'rotate job failed after losing its fence' } });
      const environment = (await harness.app.inject({ method: 'GET', url: '/v1/environments/demo', headers: harness.auth })).json() as { credentials: Array<{ id: string; lastRotation: { outcome: string } }> };
      expect(environment.credentials.find((credential) => credential.id === 'fenced-secret')?.lastRotation.outcome).toBe('force-closed');
    });

    it('audits the close with the admin actor and the reason', () => {
      const records = auditRecords(rotationId);
      expect(records.map((record) => record.outcome)).toEqual(['started', 'force-closed']);
      const last = records[1]!;
      expect(last.actor).toBe(adminActor);
      expect(last.trigger).toBe('api');
      expect(last.step).toBe('run');
      expect(last.credentialId).toBe('fenced-secret');
      expect(last.detail).toMatchObject({ reason: 'rotate job failed after losing its fence', closed: 'claim', removedJobs: `rotate:${rotationId}:failed`, releasedClaim: true });
    });

    it('lets a new rotation start and complete', async () => {
      const { outcome } = await rotateToCompletion('fenced-secret');
      expect(outcome).toBe('rotated');
    });

    it('finds nothing to close afterwards', async () => {
      const response = await forceClose('fenced-secret', 'again');
      expect(response.statusCode).toBe(409);
      expect(response.json().code).toBe('NOTHING_TO_CLOSE');
    });
  });

  describe('when the rotate job waits in the delayed set', () => {
    it('removes the delayed job, and a new rotation completes', async () => {
      const { rotationId } = await delayedRotation('delayed-secret');

      const response = await forceClose('delayed-secret', 'retry is an hour away');

      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ closed: 'claim', releasedClaim: true, previousOutcome: 'pending', removedJobs: [{ id: rotationId, name: JOB.rotate, state: 'delayed' }] });
      expect(await jobState(rotationId)).toBeNull();
      expect((await rotateToCompletion('delayed-secret')).outcome).toBe('rotated');
    });

    it('changes nothing more when a worker locks the job during the close', async () => {
      const { rotationId } = await delayedRotation('raced-secret');
      // The lock a worker takes when it starts the job; BullMQ then refuses to remove it.
      const lockKey = `${harness.runtime.queue.toKey(rotationId)}:lock`;
      await harness.runtime.redis.set(lockKey, 'a-worker-token', 'PX', 60_000);

      const response = await forceClose('raced-secret', 'worker arrives meanwhile');

      expect(response.statusCode).toBe(409);
      expect(response.json()).toMatchObject({ code: 'WORKER_ACTIVE' });
      expect(response.json().detail).toContain(`rotate job ${rotationId}`);
      expect(await harness.runtime.records.activeRotation('demo', 'raced-secret')).toMatchObject({ rotationId });
      expect(await harness.runtime.records.lastRotation('demo', 'raced-secret')).toBeNull();
      expect(await harness.runtime.records.holdsFence(rotationId, 0)).toBe(true);
      expect(await jobState(rotationId)).toBe('delayed');
      expect(auditRecords(rotationId).map((record) => [record.outcome, record.error?.code ?? null])).toEqual([['started', null], ['failed', 'WORKER_ACTIVE']]);

      await harness.runtime.redis.del(lockKey);
      expect((await forceClose('raced-secret', 'the worker is gone')).statusCode).toBe(200);
      expect((await rotateToCompletion('raced-secret')).outcome).toBe('rotated');
    });

    it('removes an active job whose lock expired', async () => {
      const { rotationId } = await delayedRotation('stalled-secret');
      // A worker that takes the job and dies: its lock key goes, the job stays in the active list.
      await harness.worker!.pause();
      await (await Job.fromId(harness.runtime.queue, rotationId))!.promote();
      const dying = new Worker(harness.env.REKEY_QUEUE!, null, { connection: { url: harness.env.REDIS_URL! }, prefix: harness.env.REKEY_REDIS_PREFIX! });
      try {
        const lockedJob = await dying.getNextJob('dead-worker-token');
        expect(lockedJob?.id).toBe(rotationId);
        await harness.runtime.redis.del(`${harness.runtime.queue.toKey(rotationId)}:lock`);
        expect(await jobState(rotationId)).toBe('active');

        const response = await forceClose('stalled-secret', 'its worker died');

        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({ closed: 'claim', releasedClaim: true, removedJobs: [{ id: rotationId, name: JOB.rotate, state: 'active' }] });
        expect(await jobState(rotationId)).toBeNull();
      } finally {
        await dying.close();
        await harness.worker!.resume();
      }
      expect((await rotateToCompletion('stalled-secret')).outcome).toBe('rotated');
    });

    it('closes from an API-only process', async () => {
      const { rotationId } = await delayedRotation('api-only-secret');
      const apiRuntime = createRuntime({ env: harness.env, withAudit: false, logger: harness.runtime.logger });
      const apiOnly = await buildServer(apiRuntime);
      try {
        const response = await forceClose('api-only-secret', 'closed from the API process', adminToken, apiOnly);
        expect(response.statusCode).toBe(200);
      } finally {
        await apiOnly.close();
        await apiRuntime.close();
      }

      expect(auditRecords(rotationId).map((record) => [record.outcome, record.actor])).toEqual([['started', adminActor], ['force-closed', adminActor]]);
      expect((await rotateToCompletion('api-only-secret')).outcome).toBe('rotated');
      expect((await verifyAuditFile(harness.env.REKEY_AUDIT_FILE!)).ok).toBe(true);
    });
  });

  describe('when an admin runs rekey force-close', () => {
    it('closes the rotation and audits the cli trigger', async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
      const { rotationId } = await delayedRotation('cli-secret');
      const address = await harness.app.listen({ host: '127.0.0.1', port: 0 });

      // The API runs in this process, so the CLI must run without blocking its event loop.
      const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'force-close', 'demo', 'cli-secret', '--reason', 'closed from the CLI'], {
        env: { ...process.env, REKEY_URL: address, REKEY_TOKEN: adminToken },
        timeout: 60_000,
      });

      expect(stdout).toContain(`force-closed rotation ${rotationId}`);
      expect(stdout).toContain(`rotate ${rotationId} (delayed)`);
      expect(stdout).toContain('claim released');
      const record = auditRecords(rotationId).find((candidate) => candidate.outcome === 'force-closed');
      expect(record?.trigger).toBe('cli');
      expect(record?.actor).toBe(adminActor);
      expect(record?.detail?.reason).toBe('closed from the CLI');
    });
  });

  describe('when the preflight has not run yet', () => {
    /** Runs `work` while the worker takes no job, so a submitted run's preflight stays queued. */
    async function withPausedWorker<T>(work: () => Promise<T>): Promise<T> {
      await harness.worker!.pause();
      try {
        return await work();
      } finally {
        await harness.worker!.resume();
      }
    }

    it('removes a queued single-credential preflight', async () => {
      await withPausedWorker(async () => {
        const { runId } = await rotate('preflight-secret');
        const response = await forceClose('preflight-secret', 'no worker will run this preflight');
        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({ runId, closed: 'claim', releasedClaim: true, removedJobs: [{ id: `plan-${runId}`, name: JOB.plan, state: 'waiting' }] });
        expect(await jobState(`plan-${runId}`)).toBeNull();
        expect(await harness.runtime.records.getRun(runId)).toMatchObject({ status: 'failed' });
      });
      expect((await rotateToCompletion('preflight-secret')).outcome).toBe('rotated');
    });

    it('requeues the preflight for other credentials', async () => {
      const runId = await withPausedWorker(async () => {
        const response = await harness.app.inject({
          method: 'POST', url: '/v1/environments/demo/rotations', headers: harness.auth, payload: { reason: 'pair', mode: 'incident', credentials: ['pair-one', 'pair-two'] },
        });
        const submitted = (response.json() as { runId: string }).runId;
        const closed = await forceClose('pair-one', 'only pair-two should rotate');
        expect(closed.statusCode).toBe(200);
        expect(await jobState(`plan-${submitted}`)).toBe('waiting');
        expect((await harness.runtime.records.getRun(submitted))?.rotations.map((rotation) => rotation.credentialId)).toEqual(['pair-two']);
        return submitted;
      });
      const run = await harness.waitForRun(runId);
      expect(run.status).toBe('completed');
      expect(await harness.runtime.records.activeRotation('demo', 'pair-one')).toBeNull();
      expect(await harness.runtime.records.lastRotation('demo', 'pair-one')).toMatchObject({ outcome: 'force-closed' });
      expect(await harness.runtime.records.lastRotation('demo', 'pair-two')).toMatchObject({ runId, outcome: 'rotated' });
      expect((await rotateToCompletion('pair-one')).outcome).toBe('rotated');
    });
  });

  describe('when the revoke job failed for good', () => {
    let closed: ForceCloseResult;
    let rotationId: string;
    let oldKeyId: string;
    let responseBody: string;
    let oldSecret: SecretValue;
    let runId: string;

    beforeAll(async () => {
      await rotateToCompletion('revoke-secret');
      oldKeyId = (await harness.runtime.records.lastRotation('demo', 'revoke-secret'))!.newKeyId!;
      const stored = await createFileStore(harness.env).readCurrentValue('demo/revoke-secret');
      oldSecret = SecretValue.fromString((JSON.parse(stored!.reveal()) as { secret: string }).secret);
      stored!.wipe();
      failingRevokes.add('revoke-secret');
      const started = await rotate('revoke-secret');
      rotationId = started.rotationId;
      runId = started.runId;
      await harness.waitForRun(started.runId);
      await waitUntil('the revoke job to fail', async () => (await jobState(`revoke-${rotationId}`)) === 'failed');
      const rotateJob = await Job.fromId<RotateJobData>(harness.runtime.queue, rotationId);
      expect(rotateJob?.data.state.outcome).toBe('revocation-pending');

      const response = await forceClose('revoke-secret', 'old key deleted by hand');
      responseBody = response.body;
      expect(response.statusCode).toBe(200);
      closed = response.json() as ForceCloseResult;
      failingRevokes.delete('revoke-secret');
    }, 60_000);

    it('removes the failed revoke job and keeps the claim alone', async () => {
      expect(closed).toMatchObject({ closed: 'revocation-pending', rotationId, releasedClaim: false, previousOutcome: 'revocation-pending' });
      expect(closed.removedJobs).toEqual([{ id: `revoke-${rotationId}`, name: JOB.revoke, state: 'failed' }]);
      expect(closed.lastRotation).toMatchObject({ outcome: 'force-closed', oldKeyId, forceClosed: { actor: adminActor, reason: 'old key deleted by hand' } });
      expect(await jobState(`revoke-${rotationId}`)).toBeNull();
    });

    it('shows the close in the run status', async () => {
      const status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json() as { credentials: Array<{ outcome: string }> };
      expect(status.credentials.map((credential) => credential.outcome)).toEqual(['force-closed']);
    });

    it('audits the old key id with the admin actor and the reason', () => {
      const record = auditRecords(rotationId).find((candidate) => candidate.outcome === 'force-closed');
      expect(record?.actor).toBe(adminActor);
      expect(record?.oldKeyId).toBe(oldKeyId);
      expect(record?.detail).toMatchObject({ closed: 'revocation-pending', reason: 'old key deleted by hand', removedJobs: `revoke:revoke-${rotationId}:failed`, releasedClaim: false });
    });

    it('never reveals the current secret', async () => {
      const value = await createFileStore(harness.env).readCurrentValue('demo/revoke-secret');
      expect(value).not.toBeNull();
      const secret = value!.reveal();
      expect(secret.length).toBeGreaterThan(0);
      expect(responseBody.includes(secret)).toBe(false);
      expect(harness.logs.join('').includes(secret)).toBe(false);
      expect(readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8').includes(secret)).toBe(false);
      value!.wipe();
    });

    it('finds nothing to close afterwards', async () => {
      const response = await forceClose('revoke-secret', 'again');
      expect(response.statusCode).toBe(409);
      expect(response.json().code).toBe('NOTHING_TO_CLOSE');
    });

    it('rotates again when the old key is then reported leaked', async () => {
      const finding = { source: 'trufflehog', reference: 'force-close test', observedAt: new Date().toISOString(), candidates: [oldSecret] };
      const result = await handleFinding(harness.runtime, finding, 'webhook:trufflehog');
      expect(result.status).toBe('rotation-started');
      expect(result.keyId).toBe(oldKeyId);
      const run = await harness.waitForRun(result.runId!);
      expect(run.status).toBe('completed');
      expect(run.reason).toContain('a replaced key whose revoke did not finish');
    });

    it('lets a new rotation start and complete', async () => {
      expect((await rotateToCompletion('revoke-secret')).outcome).toBe('rotated');
    });

    it('still acts on a leak of the old key after later rotations', async () => {
      expect(await harness.runtime.records.isUnrevoked('demo', 'revoke-secret', oldKeyId)).toBe(true);
      const finding = { source: 'trufflehog', reference: 'force-close test, later', observedAt: new Date().toISOString(), candidates: [oldSecret] };
      const result = await handleFinding(harness.runtime, finding, 'webhook:trufflehog');
      expect(result.status).toBe('rotation-started');
      expect((await harness.waitForRun(result.runId!)).status).toBe('completed');
    });
  });

  describe('when there is nothing to close', () => {
    it('answers 409 for a credential never rotated', async () => {
      const response = await forceClose('idle-secret', 'nothing');
      expect(response.statusCode).toBe(409);
      expect(response.json()).toMatchObject({ code: 'NOTHING_TO_CLOSE', detail: 'credential "idle-secret" of environment "demo" has no rotation in progress and none recorded' });
    });

    it('answers 404 for an unknown credential', async () => {
      const response = await forceClose('no-such-secret', 'nothing');
      expect(response.statusCode).toBe(404);
      expect(response.json().code).toBe('CREDENTIAL_NOT_FOUND');
    });
  });

  describe('when the request is invalid', () => {
    it('rejects a missing, empty or long reason', async () => {
      for (const payload of [{}, { reason: '' }, { reason: 'x'.repeat(501) }, { reason: 'ok', extra: true }]) {
        const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/demo/credentials/idle-secret/force-close', headers: { authorization: `Bearer ${adminToken}` }, payload });
        expect(response.statusCode, JSON.stringify(payload)).toBe(400);
        expect(response.json().code, JSON.stringify(payload)).toBe('INVALID_REQUEST');
      }
    });

    it('rejects a reason the audit trail would take for a secret', async () => {
      const response = await forceClose('idle-secret', 'value was [redacted]');
      expect(response.statusCode).toBe(400);
      expect(response.json().detail).toContain('[redacted]');
    });
  });

  describe('when the caller may not force-close', () => {
    it('rejects viewer and operator tokens', async () => {
      for (const holder of ['viewer', 'operator']) {
        const response = await forceClose('idle-secret', 'not mine to close', tokens[holder]);
        expect(response.statusCode, holder).toBe(403);
        expect(response.json().code, holder).toBe('FORBIDDEN');
      }
    });

    it('rejects an admin limited to another environment', async () => {
      const response = await forceClose('idle-secret', 'not my environment', tokens.scopedAdmin);
      expect(response.statusCode).toBe(403);
      expect(response.json().detail).toContain('may not act on environment "demo"');
    });
  });

  it('keeps the audit chain intact', async () => {
    expect((await verifyAuditFile(harness.env.REKEY_AUDIT_FILE!)).ok).toBe(true);
  });
});
