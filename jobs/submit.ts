import { randomUUID } from 'node:crypto';
import { Job } from 'bullmq';
import type { RotationMode } from '../src/contracts.js';
import { RekeyError } from '../src/errors.js';
import type { Runtime } from './runtime.js';
import { JOB, type PlanJobData, type Requester, type RunRecord } from './types.js';

const REDACTED_MARKER = '[redacted]';

export interface RotationRequest extends Requester {
  environment: string;
  mode: RotationMode;
  reason: string;
  /** Incident mode only: disable or delete each old credential before its replacement exists. */
  revokeFirst?: boolean;
  /** Credential ids to rotate; all of the environment's when absent. */
  credentialIds?: string[];
  dryRun: boolean;
}

export interface SubmittedCredential {
  credentialId: string;
  runId: string;
  rotationId: string;
  /** True when the credential already had a rotation in progress, which this request joined. */
  joined: boolean;
  /**
   * True when this incident request joined a running rotation, which then deletes the old
   * credential as soon as its replacement is promoted instead of after its grace period.
   */
  escalated: boolean;
}

export interface SubmittedRun {
  runId: string;
  /** False when every credential joined rotations already in progress and no new run was created. */
  created: boolean;
  credentials: SubmittedCredential[];
}

/**
 * Makes a running rotation urgent: its old credential is deleted without a grace period, and a
 * revoke it already scheduled runs now.
 */
async function escalateRotation(runtime: Runtime, rotationId: string): Promise<void> {
  await runtime.records.escalate(rotationId);
  const revokeJob = await Job.fromId(runtime.queue, `revoke-${rotationId}`);
  if (revokeJob !== undefined && (await revokeJob.getState()) === 'delayed') await revokeJob.promote();
}

/** Attempts of the preflight job; it reads only, so repeating it is harmless. */
const PLAN_ATTEMPTS = 3;

/**
 * Records a run and enqueues its preflight. Each credential is claimed first: one that already
 * has a rotation in progress joins it instead of starting a second one. Nothing reaches a
 * provider here; the worker does that.
 */
export async function submitRotation(runtime: Runtime, submitted: RotationRequest): Promise<SubmittedRun> {
  // The audit trail rejects "[redacted]", the JSON form of a secret value, in any record. A
  // reason built from a scanner's or an advisory's text could carry it and then fail the run's
  // first audit record, so it is rewritten here.
  const request = { ...submitted, reason: submitted.reason.split(REDACTED_MARKER).join('(redacted)') };
  if (request.revokeFirst === true && request.mode !== 'incident') {
    throw new RekeyError('INVALID_PARAMETERS', 'revokeFirst is allowed in incident mode only: a scheduled rotation never removes a working credential before its replacement is verified');
  }
  const environment = runtime.inventory.environments.get(request.environment);
  if (environment === undefined) throw new RekeyError('TARGET_NOT_FOUND', `environment "${request.environment}" is not in the inventory`);

  const known = new Set(environment.credentials.map((credential) => credential.id));
  const requested = request.credentialIds ?? environment.credentials.map((credential) => credential.id);
  const unknown = requested.filter((id) => !known.has(id));
  if (unknown.length > 0) {
    throw new RekeyError('INVALID_PARAMETERS', `environment "${request.environment}" has no credential ${unknown.map((id) => `"${id}"`).join(', ')}`);
  }
  const credentialIds = [...new Set(requested)];

  const runId = randomUUID();
  const credentials: SubmittedCredential[] = [];
  for (const credentialId of credentialIds) {
    const rotationId = randomUUID();
    const holder = request.dryRun ? null : await runtime.records.claim(request.environment, credentialId, runId, rotationId);
    if (holder === null) {
      credentials.push({ credentialId, runId, rotationId, joined: false, escalated: false });
      continue;
    }
    const escalated = request.mode === 'incident';
    if (escalated) await escalateRotation(runtime, holder.rotationId);
    credentials.push({ credentialId, runId: holder.runId, rotationId: holder.rotationId, joined: true, escalated });
  }

  const fresh = credentials.filter((credential) => !credential.joined);
  if (fresh.length === 0) {
    return { runId: credentials[0]?.runId ?? runId, created: false, credentials };
  }

  const run: RunRecord = {
    runId,
    environment: request.environment,
    mode: request.mode,
    revokeFirst: request.revokeFirst === true,
    dryRun: request.dryRun,
    reason: request.reason,
    actor: request.actor,
    trigger: request.trigger,
    createdAt: new Date().toISOString(),
    status: 'planning',
    rotations: fresh.map(({ credentialId, rotationId }) => ({ credentialId, rotationId })),
    plan: null,
    finishedAt: null,
    error: null,
  };
  try {
    await runtime.records.saveRun(run);
    const data: PlanJobData = { runId };
    await runtime.queue.add(JOB.plan, data, {
      jobId: `plan-${runId}`,
      attempts: PLAN_ATTEMPTS,
      backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
      removeOnComplete: { age: 30 * 24 * 3600 },
      removeOnFail: { age: 30 * 24 * 3600 },
    });
  } catch (error) {
    // Never acknowledge work that was not queued: undo the claims and the record.
    for (const credential of fresh) await runtime.records.release(request.environment, credential.credentialId, credential.rotationId).catch(() => undefined);
    await runtime.records.deleteRun(runId).catch(() => undefined);
    throw new RekeyError('UNAVAILABLE', `could not enqueue the run: ${(error as Error).message}`, { cause: error });
  }
  return { runId, created: true, credentials };
}
