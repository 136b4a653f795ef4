import { Worker } from 'bullmq';
import type { RotationHooks } from '../src/engine/rotation.js';
import { connectRedis, logErrorsThrottled } from './connection.js';
import { createProcessor } from './processors.js';
import type { Runtime } from './runtime.js';

/**
 * Starts a worker on the rotations queue. It has its own Redis connection, because a worker
 * blocks its connection while it waits for jobs.
 */
export function startWorker(runtime: Runtime, hooks: Pick<RotationHooks, 'atBoundary'> = {}): Worker {
  const connection = connectRedis(runtime.config.redisUrl);
  logErrorsThrottled(connection, runtime.logger, 'worker');
  const worker = new Worker(runtime.config.queueName, createProcessor(runtime, hooks), {
    connection,
    prefix: runtime.config.redisPrefix,
    concurrency: runtime.config.workerConcurrency,
    lockDuration: runtime.config.workerLockMs,
    stalledInterval: runtime.config.workerStalledIntervalMs,
  });
  worker.on('failed', (job, error) => {
    runtime.logger.warn({ jobId: job?.id, job: job?.name, attemptsMade: job?.attemptsMade, reason: error.message }, 'job attempt failed');
  });
  logErrorsThrottled(worker, runtime.logger, 'worker');
  worker.on('closed', () => connection.disconnect());
  return worker;
}
