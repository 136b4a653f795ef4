import type { Runtime } from './runtime.js';
import { submitRotation } from './submit.js';
import { JOB, type ScheduledJobData } from './types.js';

const SCHEDULER_PREFIX = 'rotate-every:';

function schedulerId(environment: string, credentialId: string): string {
  return `${SCHEDULER_PREFIX}${environment}:${credentialId}`;
}

/**
 * Makes the queue's job schedulers match the inventory: one per credential with `rotateEvery`,
 * none for the others. Every worker calls it at start, and the upsert is idempotent, so workers
 * with the same inventory agree. Returns the ids of the schedulers in place.
 */
export async function syncSchedules(runtime: Runtime): Promise<string[]> {
  const desired = new Map<string, { every: number; data: ScheduledJobData }>();
  for (const [environment, entry] of runtime.inventory.environments) {
    for (const credential of entry.credentials) {
      if (credential.rotateEveryMs === undefined) continue;
      desired.set(schedulerId(environment, credential.id), { every: credential.rotateEveryMs, data: { environment, credentialId: credential.id } });
    }
  }

  for (const scheduler of await runtime.queue.getJobSchedulers(0, -1)) {
    if (scheduler.key.startsWith(SCHEDULER_PREFIX) && !desired.has(scheduler.key)) {
      await runtime.queue.removeJobScheduler(scheduler.key);
      runtime.logger.info({ scheduler: scheduler.key }, 'rotation schedule removed: the credential has no rotateEvery any more');
    }
  }
  for (const [id, { every, data }] of desired) {
    await runtime.queue.upsertJobScheduler(id, { every }, {
      name: JOB.scheduled,
      data,
      opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
    });
  }
  return [...desired.keys()];
}

/** Requests the scheduled rotation of one tick; a rotation of the credential in progress is joined. */
export async function processScheduled(runtime: Runtime, data: ScheduledJobData): Promise<{ runId: string; joined: boolean }> {
  const credential = runtime.inventory.environments.get(data.environment)?.credentials.find((entry) => entry.id === data.credentialId);
  const every = credential?.rotateEveryMs === undefined ? 'on a schedule' : `every ${credential.rotateEveryMs / 1000}s`;
  const submitted = await submitRotation(runtime, {
    environment: data.environment,
    mode: 'scheduled',
    reason: `scheduled rotation ${every}`,
    credentialIds: [data.credentialId],
    dryRun: false,
    actor: 'schedule',
    trigger: 'schedule',
  });
  return { runId: submitted.runId, joined: submitted.credentials[0]?.joined === true };
}
