import { FlowProducer, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RotationHooks } from '../src/engine/rotation.js';
import { connectRedis, logErrorsThrottled } from './connection.js';
import { DependencyIndex, readInventoryDependencies } from './dependencies.js';
import { FingerprintIndex } from './fingerprints.js';
import { createProcessor } from './processors.js';
import { Records } from './records.js';
import { syncSchedules } from './schedules.js';
import type { Runtime } from './runtime.js';

/**
 * Starts a worker on the rotations queue. It has its own Redis connection, because a worker
 * blocks its connection while it waits for jobs.
 */
export function startWorker(runtime: Runtime, hooks: Pick<RotationHooks, 'atBoundary'> = {}): Worker {
  const connection = connectRedis(runtime.config.redisUrl);
  logErrorsThrottled(connection, runtime.logger, 'worker');
  const jobs = jobRuntime(runtime);
  const worker = new Worker(runtime.config.queueName, createProcessor(jobs.runtime, hooks), {
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
  syncSchedules(jobs.runtime).then(
    (schedules) => {
      if (schedules.length > 0) runtime.logger.info({ schedules }, 'rotation schedules in place');
    },
    (error: unknown) => runtime.logger.error({ err: (error as Error).message }, 'could not set up the rotation schedules of the inventory; rotations on request still work'),
  );
  worker.on('closed', () => {
    connection.disconnect();
    void jobs.close();
  });
  return worker;
}

/**
 * Builds the runtime that the worker's jobs use: the given one, with every Redis client replaced
 * by one on a connection of its own that waits through a Redis restart.
 *
 * The runtime's own connection fails fast so that an API request gets a 503 while Redis is down.
 * A step that hit that connection during a restart failed with a MaxRetriesPerRequestError, which
 * is no RekeyError, so the rotation failed for good and its verified replacement was discarded.
 * On this connection the step's Redis commands wait until Redis is back. If the outage outlasts
 * the job's lock, another worker takes the job over and the rotation's fence stops this one.
 *
 * NOTE: a member of Runtime that sends Redis commands must be rebuilt here too, or a step that
 * uses it fails during a Redis restart. The Redis restart test catches a member left out.
 */
function jobRuntime(runtime: Runtime): { runtime: Runtime; close(): Promise<void> } {
  const { redisUrl, redisPrefix, queueName } = runtime.config;
  const redis: Redis = connectRedis(redisUrl);
  logErrorsThrottled(redis, runtime.logger, 'worker jobs');
  const queue = new Queue(queueName, { connection: redis, prefix: redisPrefix });
  const flows = new FlowProducer({ connection: redis, prefix: redisPrefix });
  logErrorsThrottled(queue, runtime.logger, 'worker queue');
  logErrorsThrottled(flows, runtime.logger, 'worker flow producer');

  return {
    runtime: {
      ...runtime,
      redis,
      records: new Records(redis, redisPrefix),
      gates: runtime.gates.using(redis),
      fingerprints: new FingerprintIndex(redis, redisPrefix, runtime.fingerprintKey),
      dependencies: new DependencyIndex(redis, redisPrefix, readInventoryDependencies(runtime.inventory)),
      queue,
      flows,
    },
    async close(): Promise<void> {
      await Promise.allSettled([queue.close(), flows.close()]);
      redis.disconnect();
    },
  };
}
