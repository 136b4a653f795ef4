import { Job } from 'bullmq';
import { guardAuditSink } from '../src/audit/guard.js';
import { createAuditSinkFor } from '../src/audit/select.js';
import { RUN_STEP, type AuditSink } from '../src/audit/types.js';
import { RekeyError } from '../src/errors.js';
import type { Runtime } from './runtime.js';
import type { LastRotation, Requester, RotateJobData } from './types.js';

/** The string a `SecretValue` serialises to. The audit trail rejects any record that contains it. */
const REDACTED_MARKER = '[redacted]';

export interface ForceCloseRequest extends Requester {
  environment: string;
  credentialId: string;
  /** The admin's reason for the close, recorded in the audit trail and in the last rotation. */
  reason: string;
}

/**
 * The kind of stuck rotation: a claim that no live worker will release, or a finished rotation
 * whose old key's revoke job failed for good.
 */
export type StuckKind = 'claim' | 'revocation-pending';

export interface RemovedJob {
  id: string;
  name: string;
  /** The job's BullMQ state when force-close removed it. */
  state: string;
}

export interface ForceCloseResult {
  environment: string;
  credentialId: string;
  runId: string;
  rotationId: string;
  closed: StuckKind;
  /** The rotation's outcome before the close, from its rotate job, or `pending` before one existed. */
  previousOutcome: string;
  removedJobs: RemovedJob[];
  releasedClaim: boolean;
  lastRotation: LastRotation;
}

export type ForceCloseOutcome =
  | { status: 'closed'; result: ForceCloseResult }
  | { status: 'rejected'; httpStatus: 400 | 404 | 409; code: string; detail: string };

/** A job as force-close found it. */
interface JobSnapshot {
  job: Job;
  state: string;
  /** True when the job is active and its worker's lock key exists, so a live worker runs it. */
  locked: boolean;
}

interface StuckRotation {
  kind: StuckKind;
  runId: string;
  rotationId: string;
  rotate: JobSnapshot | null;
  revoke: JobSnapshot | null;
  /** The run's preflight job, looked up only for a claim whose rotate job does not exist. */
  plan: JobSnapshot | null;
}

type Rejection = Extract<ForceCloseOutcome, { status: 'rejected' }>;

function reject(httpStatus: Rejection['httpStatus'], code: string, detail: string): Rejection {
  return { status: 'rejected', httpStatus, code, detail };
}

/** Job states that force-close removes. A completed job is kept, and an active one only goes when no worker holds its lock. */
const REMOVABLE_STATES = new Set(['waiting', 'delayed', 'prioritized', 'paused', 'failed', 'active', 'unknown']);

function isRemovable(snapshot: JobSnapshot | null): snapshot is JobSnapshot {
  return snapshot !== null && !snapshot.locked && REMOVABLE_STATES.has(snapshot.state);
}

async function findJob(runtime: Runtime, jobId: string): Promise<JobSnapshot | null> {
  const job = await Job.fromId(runtime.queue, jobId);
  if (job === undefined) return null;
  const state = await job.getState();
  // BullMQ keeps a worker's lock at `<queue key>:<job id>:lock` and lets it expire when the
  // worker stops renewing it, so an active job without that key belongs to a dead worker.
  const locked = state === 'active' && (await runtime.redis.exists(`${runtime.queue.toKey(jobId)}:lock`)) === 1;
  return { job, state, locked };
}

/**
 * Closes a credential's stuck rotation so that a new one can start. This is bookkeeping only:
 * no provider or store is called. It removes the rotation's queued, delayed or failed rotate
 * and revoke jobs, releases the credential's claim and records the last rotation as
 * `force-closed`. A job that a live worker runs makes it change nothing.
 */
export async function forceClose(runtime: Runtime, request: ForceCloseRequest): Promise<ForceCloseOutcome> {
  if (request.reason.includes(REDACTED_MARKER)) {
    return reject(400, 'INVALID_REQUEST', `the reason must not contain "${REDACTED_MARKER}", which the audit trail reserves for secret values`);
  }
  const environment = runtime.inventory.environments.get(request.environment);
  if (environment === undefined) {
    return reject(404, 'ENVIRONMENT_NOT_FOUND', `environment "${request.environment}" is not in the inventory; known environments: ${[...runtime.inventory.environments.keys()].join(', ')}`);
  }
  const credential = environment.credentials.find((entry) => entry.id === request.credentialId);
  if (credential === undefined) {
    return reject(404, 'CREDENTIAL_NOT_FOUND', `environment "${request.environment}" has no credential "${request.credentialId}"`);
  }

  const stuck = await findStuckRotation(runtime, request);
  if (stuck.status === 'rejected') return stuck;
  const busy = [stuck.rotate, stuck.revoke, stuck.plan].find((snapshot): snapshot is JobSnapshot => snapshot?.locked === true);
  if (busy !== undefined) {
    return reject(409, 'WORKER_ACTIVE', `a worker is running the ${busy.job.name} job ${busy.job.id ?? ''} of rotation ${stuck.rotationId} and holds its lock; force-close changes nothing while a worker runs it. Retry after the job ends, or after its lock expires (REKEY_WORKER_LOCK_MS) if the worker died`);
  }
  return closeRotation(runtime, request, credential.kind, stuck);
}

async function findStuckRotation(runtime: Runtime, request: ForceCloseRequest): Promise<StuckRotation & { status: 'stuck' } | Rejection> {
  const { environment, credentialId } = request;
  const claim = await runtime.records.activeRotation(environment, credentialId);
  if (claim !== null) {
    const rotate = await findJob(runtime, claim.rotationId);
    const revoke = await findJob(runtime, `revoke-${claim.rotationId}`);
    const plan = rotate === null ? await findJob(runtime, `plan-${claim.runId}`) : null;
    return { status: 'stuck', kind: 'claim', ...claim, rotate, revoke, plan };
  }

  const last = await runtime.records.lastRotation(environment, credentialId);
  if (last === null) {
    return reject(409, 'NOTHING_TO_CLOSE', `credential "${credentialId}" of environment "${environment}" has no rotation in progress and none recorded`);
  }
  const rotate = await findJob(runtime, last.rotationId);
  const revoke = await findJob(runtime, `revoke-${last.rotationId}`);
  const outcome = (rotate?.job.data as RotateJobData | undefined)?.state.outcome;
  // A revoke job that failed for good leaves the rotation `revocation-pending`. One removed by
  // retention, or by an earlier force-close (which recorded `force-closed`), has nothing left.
  const revokeFailed = revoke?.state === 'failed' || (revoke === null && outcome === 'revocation-pending' && last.outcome !== 'force-closed');
  if (revoke?.locked !== true && !revokeFailed) {
    const revokeState = revoke === null ? '' : `; its revoke job is ${revoke.state}, so it is still retried or waits for the grace period`;
    return reject(409, 'NOTHING_TO_CLOSE', `credential "${credentialId}" of environment "${environment}" has no rotation in progress, and its last rotation ${last.rotationId} (run ${last.runId}, see rekey status ${last.runId}) ended "${last.outcome}"${revokeState}`);
  }
  return { status: 'stuck', kind: 'revocation-pending', runId: last.runId, rotationId: last.rotationId, rotate, revoke, plan: null };
}

function describeJobs(jobs: RemovedJob[]): string {
  return jobs.length === 0 ? 'none' : jobs.map((job) => `${job.name}:${job.id}:${job.state}`).join(',');
}

function removalOf(snapshot: JobSnapshot): RemovedJob {
  return { id: snapshot.job.id ?? '', name: snapshot.job.name, state: snapshot.state };
}

/** A job that a worker locked after force-close found it removable. */
class JobTakenError extends Error {
  constructor(readonly snapshot: JobSnapshot, cause: unknown) {
    super((cause as Error).message, { cause });
    this.name = 'JobTakenError';
  }
}

/** Removes a job unless a worker locked it meanwhile. BullMQ checks the lock and removes the job in one Lua script. */
async function removeJob(snapshot: JobSnapshot): Promise<RemovedJob> {
  try {
    await snapshot.job.remove({ removeChildren: false });
  } catch (error) {
    if (error instanceof Error && error.message.includes('locked')) throw new JobTakenError(snapshot, error);
    throw error;
  }
  return removalOf(snapshot);
}

/** Returns whether a preflight job still waits to run, so that removing it keeps it from starting. */
function isQueued(plan: JobSnapshot | null): plan is JobSnapshot {
  return isRemovable(plan) && plan.state !== 'failed';
}

async function closeRotation(runtime: Runtime, request: ForceCloseRequest, provider: string, stuck: StuckRotation): Promise<ForceCloseOutcome> {
  const { environment, credentialId, reason, actor, trigger } = request;
  const { runId, rotationId } = stuck;
  const state = (stuck.rotate?.job.data as RotateJobData | undefined)?.state;
  const previousOutcome = state?.outcome ?? 'pending';
  // The rotate job goes first: it is the one a worker may pick up while this runs.
  const planned = [stuck.rotate, stuck.revoke].filter(isRemovable);
  const detachPlan = stuck.kind === 'claim' && stuck.rotate === null;
  const described = detachPlan && isQueued(stuck.plan) ? [...planned, stuck.plan] : planned;
  const base = { runId, rotationId, environment, credentialId, provider, step: RUN_STEP, actor, trigger, oldKeyId: state?.oldKeyId ?? null, newKeyId: state?.newKeyId ?? null };

  return withAudit(runtime, async (audit) => {
    // Written before anything changes, so a trail that cannot be written stops the close.
    await audit.append({ ...base, outcome: 'started', detail: { action: 'force-close', closing: stuck.kind, reason, previousOutcome, jobs: describeJobs(described.map(removalOf)) } });
    const removedJobs: RemovedJob[] = [];
    try {
      for (const snapshot of planned) removedJobs.push(await removeJob(snapshot));
      if (detachPlan) removedJobs.push(...(await detachFromPreflight(runtime, stuck)));
    } catch (error) {
      if (!(error instanceof JobTakenError)) throw error;
      const { job } = error.snapshot;
      const detail = `a worker started the ${job.name} job ${job.id ?? ''} of rotation ${rotationId} while force-close ran; removed before that: ${describeJobs(removedJobs)}; the claim and the last rotation are unchanged`;
      await audit.append({ ...base, outcome: 'failed', detail: { action: 'force-close', reason, removedJobs: describeJobs(removedJobs) }, error: { code: 'WORKER_ACTIVE', message: error.message, retryable: true } });
      runtime.logger.warn({ environment, credentialId, runId, rotationId, jobId: job.id, removedJobs: describeJobs(removedJobs) }, 'force-close stopped: a worker locked a job of the rotation during the close');
      return reject(409, 'WORKER_ACTIVE', detail);
    }
    // A worker that lost its lock while blocked still holds an older fence: raising it makes that
    // worker stop before its next step instead of going on with a closed rotation. It is raised
    // only now, because a worker that won the race for a job above must keep its fence.
    await runtime.records.takeFence(rotationId);

    // rekey never revoked the old key of a closed rotation: a leak report of it must still act.
    if (state?.oldKeyId !== undefined && state.oldKeyId !== null && !state.revoked) {
      await runtime.records.markUnrevoked(environment, credentialId, state.oldKeyId);
    }
    const lastRotation: LastRotation = {
      runId, rotationId, outcome: 'force-closed', oldKeyId: state?.oldKeyId ?? null, newKeyId: state?.newKeyId ?? null,
      finishedAt: new Date().toISOString(), forceClosed: { actor, reason },
    };
    // Recorded before the claim goes, so a rotation that starts right after the release is the
    // newest one on record.
    await runtime.records.setLastRotation(environment, credentialId, lastRotation);
    // A finished rotate job stays for the run's status: it shows the close too.
    const finishedRotate = stuck.rotate !== null && !planned.includes(stuck.rotate) ? stuck.rotate.job as Job<RotateJobData> : null;
    if (finishedRotate !== null && state !== undefined) await finishedRotate.updateData({ ...finishedRotate.data, state: { ...state, outcome: 'force-closed' } });
    let releasedClaim = false;
    if (stuck.kind === 'claim') {
      await runtime.records.release(environment, credentialId, rotationId);
      releasedClaim = true;
    }

    try {
      await audit.append({ ...base, outcome: 'force-closed', detail: { action: 'force-close', closed: stuck.kind, reason, previousOutcome, removedJobs: describeJobs(removedJobs), releasedClaim } });
    } catch (error) {
      throw new RekeyError('AUDIT_UNAVAILABLE', `rotation ${rotationId} was force-closed, but its closing audit record could not be written; the "started" record before it names the rotation`, { cause: error });
    }
    runtime.logger.warn({ environment, credentialId, runId, rotationId, actor, closed: stuck.kind, removedJobs: describeJobs(removedJobs) }, 'rotation force-closed by an admin');
    return { status: 'closed', result: { environment, credentialId, runId, rotationId, closed: stuck.kind, previousOutcome, removedJobs, releasedClaim, lastRotation } };
  });
}

/**
 * Takes a credential out of a run whose preflight never created its rotate job. A preflight that
 * is still queued is removed. When the run has other credentials, it is queued again without
 * this one, which works because the preflight reads the run record only when it starts. A run
 * left with nothing to do, or whose preflight failed for good or is gone, is marked failed.
 */
async function detachFromPreflight(runtime: Runtime, stuck: StuckRotation): Promise<RemovedJob[]> {
  const run = await runtime.records.getRun(stuck.runId);
  const plan = stuck.plan;
  if (!isQueued(plan)) {
    if (run !== null && run.status === 'planning') {
      await runtime.records.updateRun(stuck.runId, (record) => Object.assign(record, { status: 'failed', finishedAt: new Date().toISOString() }));
    }
    return [];
  }

  const removed = await removeJob(plan);
  if (run === null) return [removed];
  const updated = await runtime.records.updateRun(stuck.runId, (record) => {
    record.rotations = record.rotations.filter((rotation) => rotation.rotationId !== stuck.rotationId);
    if (record.rotations.length === 0) Object.assign(record, { status: 'failed', finishedAt: new Date().toISOString() });
  });
  if (updated.rotations.length > 0) {
    await runtime.queue.add(plan.job.name, plan.job.data, { ...plan.job.opts, jobId: plan.job.id });
  }
  return [removed];
}

/**
 * Runs `work` with an audit sink: the worker's, or in an API-only process one opened for this
 * request and closed after it. Both append to the same hash chain, since the file and PostgreSQL
 * sinks serialise appends across processes.
 */
async function withAudit<T>(runtime: Runtime, work: (audit: AuditSink) => Promise<T>): Promise<T> {
  if (runtime.audit !== null) return work(runtime.audit);
  const audit = guardAuditSink(createAuditSinkFor(runtime.env), { failing: () => undefined, recovered: () => undefined });
  try {
    return await work(audit);
  } finally {
    await audit.close();
  }
}
