import { Job } from 'bullmq';
import type { ErrorSummary } from '../src/errors.js';
import type { Runtime } from './runtime.js';
import type { PlanEntry, RotateJobData, RunRecord } from './types.js';

/** The public view of one credential of a run: ids, step and outcome, never a value. */
export interface CredentialStatus {
  credentialId: string;
  rotationId: string;
  /** BullMQ's state of the credential's job, or `not-started` before the preflight created it. */
  jobState: string;
  step: string | null;
  outcome: string;
  attempts: number;
  oldKeyId: string | null;
  newKeyId: string | null;
  revokeAt: string | null;
  confirmed: boolean | null;
  error: ErrorSummary | null;
}

export interface RunStatusView extends Omit<RunRecord, 'rotations' | 'plan'> {
  credentials: CredentialStatus[];
  plan: PlanEntry[] | null;
}

/** Assembles a run's status from its record and the jobs of its credentials. */
export async function describeRun(runtime: Runtime, run: RunRecord): Promise<RunStatusView> {
  const credentials: CredentialStatus[] = [];
  for (const rotation of run.rotations) {
    const job = await Job.fromId<RotateJobData>(runtime.queue, rotation.rotationId);
    const planned = run.plan?.find((entry) => entry.credentialId === rotation.credentialId);
    if (job === undefined) {
      const blocked = planned !== undefined && !planned.ok && !run.dryRun;
      let outcome = 'pending';
      if (blocked) outcome = 'failed';
      else if (run.dryRun) outcome = 'planned';
      credentials.push({
        credentialId: rotation.credentialId,
        rotationId: rotation.rotationId,
        jobState: 'not-started',
        step: blocked ? 'inspect' : null,
        outcome,
        attempts: 0,
        oldKeyId: planned?.currentKeyId ?? null,
        newKeyId: null,
        revokeAt: null,
        confirmed: null,
        error: planned?.error ?? planned?.stores.find((store) => store.error !== null)?.error ?? null,
      });
      continue;
    }
    const state = job.data.state;
    credentials.push({
      credentialId: rotation.credentialId,
      rotationId: rotation.rotationId,
      jobState: await job.getState(),
      step: state.step,
      outcome: state.outcome,
      attempts: job.attemptsMade,
      oldKeyId: state.oldKeyId,
      newKeyId: state.newKeyId,
      revokeAt: state.revokeAt,
      confirmed: state.confirmed,
      error: state.error,
    });
  }
  const { rotations: _rotations, ...rest } = run;
  return { ...rest, credentials };
}
