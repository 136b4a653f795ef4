import { DelayedError, Job, UnrecoverableError, type Processor } from 'bullmq';
import { RUN_STEP } from '../src/audit/index.js';
import { abandonRotation, confirmRevocation, retireReplacedVersions, runRotation, type RotationHooks, type RotationTarget } from '../src/engine/rotation.js';
import { initialRotationState, type RotationState } from '../src/engine/state.js';
import { isRekeyError, RekeyError, summarizeError } from '../src/errors.js';
import type { SecretValue } from '../src/secret.js';
import { ActiveAttempts, type Attempt } from './attempts.js';
import { auditFor, findCredential, requireAudit, resolveTarget, stepContext, type CredentialScope } from './context.js';
import { preflightCredential } from './preflight.js';
import { processScheduled } from './schedules.js';
import { submitRotation } from './submit.js';
import type { Runtime } from './runtime.js';
import {
  JOB, type LastRotation, type PlanEntry, type PlanJobData, type RevokeJobData, type RotateJobData, type RunJobData, type RunRecord, type ScheduledJobData,
} from './types.js';

/** Attempts of one credential's rotation job before it fails for good. */
export const ROTATE_ATTEMPTS = 5;
/** Attempts of a revoke job; between them it backs off exponentially from one second. */
export const REVOKE_ATTEMPTS = 10;
const RETENTION_SECONDS = 30 * 24 * 3600;
const RETRY_BACKOFF = { type: 'exponential', delay: 1000, jitter: 0.5 } as const;
/**
 * Maximum wait of an attempt for an older attempt of the same rotation in this process to reach
 * a step boundary. Past it the newer attempt goes on, and the fence stops the older one.
 */
const HANDOVER_WAIT_MS = 120_000;
/** Pause of a job that found the audit trail unwritable before it tries again. */
const AUDIT_OUTAGE_DELAY_MS = 5000;

/** Outcomes of a credential that count as a successful rotation: the replacement is current. */
const SUCCESSFUL_OUTCOMES = new Set(['rotated', 'revocation-scheduled', 'revocation-pending']);

/** Dispatches every job of the rotations queue to its handler. */
export function createProcessor(runtime: Runtime, hooks: Pick<RotationHooks, 'atBoundary'> = {}): Processor {
  const attempts = new ActiveAttempts();
  return async (job, token, signal) => {
    try {
      return await dispatch(runtime, job, signal, hooks, attempts);
    } catch (error) {
      if (!isAuditOutage(error) || token === undefined) throw error;
      // Fail closed without using up an attempt: the job waits, its saved state intact, and
      // tries again once the audit trail may be writable.
      await job.moveToDelayed(Date.now() + AUDIT_OUTAGE_DELAY_MS, token);
      throw new DelayedError(`${job.name} job ${job.id ?? ''} waits for the audit trail`);
    }
  };
}

function isAuditOutage(error: unknown): boolean {
  return isRekeyError(error) && error.code === 'AUDIT_UNAVAILABLE';
}

async function dispatch(runtime: Runtime, job: Job, signal: AbortSignal | undefined, hooks: Pick<RotationHooks, 'atBoundary'>, attempts: ActiveAttempts): Promise<unknown> {
  switch (job.name) {
    case JOB.plan:
      return processPlan(runtime, job as Job<PlanJobData>);
    case JOB.rotate:
      return processRotate(runtime, job as Job<RotateJobData>, signal, hooks, attempts);
    case JOB.revoke:
      return processRevoke(runtime, job as Job<RevokeJobData>, signal);
    case JOB.run:
      return processRun(runtime, job as Job<RunJobData>);
    case JOB.scheduled:
      return processScheduled(runtime, (job as Job<ScheduledJobData>).data);
    default:
      throw new UnrecoverableError(`unknown job name "${job.name}"`);
  }
}

function isLastAttempt(job: Job, error: unknown): boolean {
  const retryable = isRekeyError(error) && error.retryable;
  return !retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

async function auditRun(runtime: Runtime, run: RunRecord, outcome: 'requested' | 'succeeded' | 'failed', detail: Record<string, string | number | boolean | null>): Promise<void> {
  await requireAudit(runtime).append({ runId: run.runId, environment: run.environment, step: RUN_STEP, outcome, actor: run.actor, trigger: run.trigger, detail });
}

/**
 * Preflight of a whole run: every credential inspected and every store checked before anything
 * changes anywhere. Credentials that pass get a rotation job; the others fail here, untouched.
 */
async function processPlan(runtime: Runtime, job: Job<PlanJobData>): Promise<PlanEntry[]> {
  const run = await runtime.records.getRun(job.data.runId);
  if (run === null) throw new UnrecoverableError(`run ${job.data.runId} not found`);
  if (job.attemptsMade === 0) {
    await auditRun(runtime, run, 'requested', { mode: run.mode, revokeFirst: run.revokeFirst === true, dryRun: run.dryRun, reason: run.reason, credentials: run.rotations.length });
  }

  const plan: PlanEntry[] = [];
  for (const rotation of run.rotations) {
    const scope: CredentialScope = { ...run, ...rotation };
    plan.push(await preflightCredential(runtime, scope));
  }
  const transient = plan.some((entry) => entry.error?.retryable === true || entry.stores.some((store) => store.error?.retryable === true));
  if (transient && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) {
    throw new Error('a preflight check failed with a temporary error; the preflight will run again');
  }

  const passed = run.rotations.filter((rotation) => plan.find((entry) => entry.credentialId === rotation.credentialId)?.ok === true);
  const finishedAt = new Date().toISOString();
  if (run.dryRun) {
    await runtime.records.updateRun(run.runId, (record) => Object.assign(record, { plan, status: 'completed', finishedAt }));
    await auditRun(runtime, run, 'succeeded', { dryRun: true, ready: passed.length, blocked: run.rotations.length - passed.length });
    return plan;
  }

  for (const rotation of run.rotations) {
    if (passed.includes(rotation)) continue;
    await runtime.records.setLastRotation(run.environment, rotation.credentialId, { runId: run.runId, rotationId: rotation.rotationId, outcome: 'failed', oldKeyId: null, newKeyId: null, finishedAt });
    await runtime.records.release(run.environment, rotation.credentialId, rotation.rotationId);
  }
  if (passed.length === 0) {
    await runtime.records.updateRun(run.runId, (record) => Object.assign(record, { plan, status: 'failed', finishedAt }));
    await auditRun(runtime, run, 'failed', { rotated: 0, failed: run.rotations.length });
    return plan;
  }

  await runtime.records.updateRun(run.runId, (record) => Object.assign(record, { plan, status: 'running' }));
  await runtime.flows.add({
    name: JOB.run,
    queueName: runtime.config.queueName,
    data: { runId: run.runId } satisfies RunJobData,
    opts: { jobId: run.runId, removeOnComplete: { age: RETENTION_SECONDS }, removeOnFail: { age: RETENTION_SECONDS } },
    children: passed.map((rotation) => ({
      name: JOB.rotate,
      queueName: runtime.config.queueName,
      data: {
        runId: run.runId, rotationId: rotation.rotationId, environment: run.environment, credentialId: rotation.credentialId,
        mode: run.mode, revokeFirst: run.revokeFirst === true, actor: run.actor, trigger: run.trigger, state: initialRotationState(),
      } satisfies RotateJobData,
      opts: {
        jobId: rotation.rotationId,
        attempts: ROTATE_ATTEMPTS,
        backoff: RETRY_BACKOFF,
        ignoreDependencyOnFailure: true,
        removeOnComplete: { age: RETENTION_SECONDS },
        removeOnFail: { age: RETENTION_SECONDS },
      },
    })),
  });
  return plan;
}

interface AttemptScope {
  fence: number;
  attempt: Attempt;
}

function rotationHooks(runtime: Runtime, job: Job<RotateJobData>, target: RotationTarget, extra: Pick<RotationHooks, 'atBoundary'>, owner: AttemptScope): RotationHooks {
  const scope = job.data;
  return {
    // Every step starts with a persist, so checking the fence here stops a worker that lost the
    // rotation (its lock expired while it was blocked) before its next change anywhere.
    persist: async (state) => {
      if (!(await runtime.records.holdsFence(scope.rotationId, owner.fence))) {
        throw new RekeyError('FENCE_LOST', `another worker took over rotation ${scope.rotationId}; this worker stops`);
      }
      await job.updateData({ ...job.data, state });
    },
    ledger: runtime.records.ledger(scope.environment, scope.credentialId),
    audit: auditFor(runtime, scope, target.provider.kind),
    fingerprint: (value: SecretValue) => value.fingerprint(runtime.fingerprintKey),
    indexVersion: async (keyId, fingerprints) => {
      const entry = { environment: scope.environment, credentialId: scope.credentialId, keyId };
      await runtime.fingerprints.recordValues(entry, fingerprints);
      if (target.provider.keyIdIsPublic === true) await runtime.fingerprints.recordKeyId(entry);
    },
    scheduleRevoke: async (oldKeyId, requestedDelayMs) => {
      // A leak reported, or an incident request joined, while this rotation ran cuts the grace
      // period: the old key goes now.
      const urgent = await runtime.records.isLeaked(scope.environment, scope.credentialId, oldKeyId) || await runtime.records.isEscalated(scope.rotationId);
      const delayMs = urgent ? 0 : requestedDelayMs;
      if (delayMs > 0) await runtime.records.setPendingRevoke(scope.environment, scope.credentialId, oldKeyId, `revoke-${scope.rotationId}`);
      const data: RevokeJobData = {
        runId: scope.runId, rotationId: scope.rotationId, environment: scope.environment, credentialId: scope.credentialId,
        mode: scope.mode, actor: scope.actor, trigger: scope.trigger, oldKeyId,
      };
      await runtime.queue.add(JOB.revoke, data, {
        jobId: `revoke-${scope.rotationId}`,
        delay: delayMs,
        attempts: REVOKE_ATTEMPTS,
        backoff: RETRY_BACKOFF,
        removeOnComplete: { age: RETENTION_SECONDS },
        removeOnFail: { age: RETENTION_SECONDS },
      });
    },
    atBoundary: async (point) => {
      await extra.atBoundary?.(point);
      // A newer attempt in this process waits for this one to save a state it can resume from
      // without this attempt's memory. After `minted` the new key's value exists nowhere else
      // yet, so the handover waits for the next boundary. This attempt then parks until the
      // newer one ends (see jobs/attempts.ts).
      const successor = owner.attempt.successor;
      if (successor !== null && point !== 'minted') {
        owner.attempt.markStopped();
        await successor.finished;
        throw new RekeyError('FENCE_LOST', `a newer attempt in this worker took over rotation ${scope.rotationId}; this attempt stops`);
      }
    },
  };
}

async function finishRotation(runtime: Runtime, scope: CredentialScope, state: RotationState): Promise<void> {
  const last: LastRotation = {
    runId: scope.runId, rotationId: scope.rotationId, outcome: state.outcome,
    oldKeyId: state.oldKeyId, newKeyId: state.newKeyId, finishedAt: new Date().toISOString(),
  };
  await runtime.records.setLastRotation(scope.environment, scope.credentialId, last);
  // An inline revoke of a key that an earlier, force-closed rotation left working ends its mark.
  if (state.revoked && state.oldKeyId !== null) await runtime.records.clearUnrevoked(scope.environment, scope.credentialId, state.oldKeyId);
  await runtime.records.release(scope.environment, scope.credentialId, scope.rotationId);

  // A scanner reported the replacement itself while this rotation ran: it is already exposed,
  // so it gets replaced in turn, by a follow-up incident rotation.
  if (state.promoted && state.newKeyId !== null && await runtime.records.isLeaked(scope.environment, scope.credentialId, state.newKeyId)) {
    const followUp = await submitRotation(runtime, {
      environment: scope.environment,
      mode: 'incident',
      reason: `replacement ${state.newKeyId} was reported leaked while rotation ${scope.rotationId} ran`,
      credentialIds: [scope.credentialId],
      dryRun: false,
      actor: scope.actor,
      trigger: 'follow-up',
    });
    runtime.logger.warn({ environment: scope.environment, credentialId: scope.credentialId, keyId: state.newKeyId, followUpRunId: followUp.runId }, 'replacement reported leaked; follow-up rotation started');
  }
}

/** Rotates one credential, resuming from the state its previous attempt saved. */
async function processRotate(runtime: Runtime, job: Job<RotateJobData>, signal: AbortSignal | undefined, extra: Pick<RotationHooks, 'atBoundary'>, attempts: ActiveAttempts): Promise<RotationState> {
  const attempt = attempts.begin(job.data.rotationId);
  try {
    if (attempt.predecessor !== null) await takeOverInProcess(runtime, job, attempt.predecessor);
    return await rotateAttempt(runtime, job, signal, extra, attempt);
  } finally {
    attempts.end(job.data.rotationId, attempt);
  }
}

/**
 * This worker's stalled check gave it back a job that an older attempt here still runs. Waits
 * for that attempt to save its state at a step boundary, then reloads the state it saved.
 */
async function takeOverInProcess(runtime: Runtime, job: Job<RotateJobData>, older: Attempt): Promise<void> {
  const logger = runtime.logger.child({ rotationId: job.data.rotationId, credentialId: job.data.credentialId });
  logger.warn('this worker took back its own stalled rotation job; waiting for the earlier attempt to reach a step boundary');
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    older.stopped.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), HANDOVER_WAIT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (!stopped) logger.warn({ waitedMs: HANDOVER_WAIT_MS }, 'the earlier attempt did not reach a step boundary in time; the fence stops it');
  const saved = job.id === undefined ? undefined : await Job.fromId<RotateJobData>(runtime.queue, job.id);
  if (saved !== undefined) job.data = saved.data;
}

async function rotateAttempt(runtime: Runtime, job: Job<RotateJobData>, signal: AbortSignal | undefined, extra: Pick<RotationHooks, 'atBoundary'>, attempt: Attempt): Promise<RotationState> {
  const scope = job.data;
  const target = resolveTarget(runtime, findCredential(runtime, scope.environment, scope.credentialId));
  const ctx = stepContext(runtime, scope, signal);
  const fence = await runtime.records.takeFence(scope.rotationId);
  const hooks = rotationHooks(runtime, job, target, extra, { fence, attempt });
  const state = job.data.state;

  try {
    await runRotation(target, state, ctx, hooks, { revokeFirst: scope.revokeFirst === true });
  } catch (error) {
    if (isRekeyError(error) && error.code === 'FENCE_LOST') {
      // The rotation belongs to the attempt that took it over: this one must neither clean up
      // nor record an outcome. BullMQ refuses this attempt's failure, since the lock is no
      // longer its own, so the job stays with the newer attempt.
      ctx.logger.warn({ fence, step: state.step }, 'lost the rotation to another worker; stopping');
      throw new UnrecoverableError(error.message);
    }
    if (isAuditOutage(error)) {
      ctx.logger.warn({ step: state.step, error: summarizeError(error) }, 'rotation step waits for the audit trail');
      throw error;
    }
    const summary = summarizeError(error);
    if (!isLastAttempt(job, error)) {
      state.error = summary;
      await hooks.persist(state);
      await hooks.audit({ step: state.step ?? 'inspect', outcome: 'retrying', error: summary, detail: { attempt: job.attemptsMade + 1 } });
      ctx.logger.warn({ step: state.step, attempt: job.attemptsMade + 1, error: summary }, 'rotation step failed; retrying');
      throw new Error(summary.message, { cause: error });
    }

    try {
      await abandonRotation(target, state, ctx, hooks, error);
    } catch (cleanupError) {
      // The replacement could not be removed: it stays recorded as unpromoted, so the next
      // rotation of this credential lists it as an orphan and removes it first.
      ctx.logger.error({ error: summarizeError(cleanupError), keyId: state.newKeyId }, 'could not remove the replacement of a failed rotation');
      state.error = summary;
      state.outcome = 'failed';
      await hooks.persist(state);
    }
    await finishRotation(runtime, scope, state);
    ctx.logger.error({ step: state.step, error: summary }, 'rotation failed; the old credential stays current');
    throw new UnrecoverableError(`${summary.code}: ${summary.message}`);
  }

  await finishRotation(runtime, scope, state);
  ctx.logger.info({ outcome: state.outcome, oldKeyId: state.oldKeyId, newKeyId: state.newKeyId }, 'rotation finished');
  return state;
}

/** Deletes an old credential, then updates the state of the rotation that replaced it. */
async function processRevoke(runtime: Runtime, job: Job<RevokeJobData>, signal: AbortSignal | undefined): Promise<boolean | null> {
  const scope = job.data;
  const target = resolveTarget(runtime, findCredential(runtime, scope.environment, scope.credentialId));
  const ctx = stepContext(runtime, scope, signal);
  const audit = auditFor(runtime, scope, target.provider.kind);
  const rotateJob = await Job.fromId<RotateJobData>(runtime.queue, scope.rotationId);
  const updateState = async (change: Partial<RotationState>): Promise<void> => {
    if (rotateJob !== undefined) await rotateJob.updateData({ ...rotateJob.data, state: { ...rotateJob.data.state, ...change } });
  };

  await audit({ step: 'revoke', outcome: 'started', oldKeyId: scope.oldKeyId });
  try {
    await target.provider.revoke(target.params, scope.oldKeyId, ctx);
  } catch (error) {
    const summary = summarizeError(error);
    await audit({ step: 'revoke', outcome: isLastAttempt(job, error) ? 'failed' : 'retrying', oldKeyId: scope.oldKeyId, error: summary });
    if (!isLastAttempt(job, error)) throw new Error(summary.message, { cause: error });
    await updateState({ outcome: 'revocation-pending', error: summary });
    await runtime.records.markUnrevoked(scope.environment, scope.credentialId, scope.oldKeyId);
    ctx.logger.error({ alert: true, keyId: scope.oldKeyId, error: summary }, 'revoke failed for good; the old credential is still valid and needs an operator');
    throw new UnrecoverableError(`${summary.code}: ${summary.message}`);
  }
  await audit({ step: 'revoke', outcome: 'succeeded', oldKeyId: scope.oldKeyId });
  await runtime.records.clearUnrevoked(scope.environment, scope.credentialId, scope.oldKeyId);
  await retireReplacedVersions(target, ctx);

  const confirmed = await confirmRevocation(target, scope.oldKeyId, ctx, { audit });
  await updateState({ revoked: true, confirmed, outcome: 'rotated', error: null });
  const state = rotateJob?.data.state;
  await runtime.records.setLastRotation(scope.environment, scope.credentialId, {
    runId: scope.runId, rotationId: scope.rotationId, outcome: 'rotated',
    oldKeyId: scope.oldKeyId, newKeyId: state?.newKeyId ?? null, finishedAt: new Date().toISOString(),
  });
  return confirmed;
}

/** Ends a run once all its credentials' jobs ended, successful or not. */
async function processRun(runtime: Runtime, job: Job<RunJobData>): Promise<{ rotated: number; failed: number }> {
  const run = await runtime.records.getRun(job.data.runId);
  if (run === null) throw new UnrecoverableError(`run ${job.data.runId} not found`);

  let rotated = 0;
  for (const rotation of run.rotations) {
    const child = await Job.fromId<RotateJobData>(runtime.queue, rotation.rotationId);
    if (child !== undefined && SUCCESSFUL_OUTCOMES.has(child.data.state.outcome)) rotated += 1;
  }
  const blocked = run.plan?.filter((entry) => !entry.ok).length ?? 0;
  const failed = run.rotations.length - rotated;
  const status = failed === 0 ? 'completed' : 'failed';
  await runtime.records.updateRun(run.runId, (record) => Object.assign(record, { status, finishedAt: new Date().toISOString() }));
  await auditRun(runtime, run, status === 'completed' ? 'succeeded' : 'failed', { rotated, failed, blockedByPreflight: blocked });
  return { rotated, failed };
}
