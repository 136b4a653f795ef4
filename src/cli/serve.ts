import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { createRuntime } from '../../jobs/runtime.js';
import { startWorker } from '../../jobs/worker.js';
import { buildServer } from '../api/server.js';

/**
 * Starts the API, a worker or both, and stops them cleanly on SIGINT or SIGTERM. The API starts
 * first: if it cannot (no token, port in use), nothing else starts and the command fails, so a
 * half-started process never keeps taking jobs.
 */
export async function runServe(parts: { api: boolean; worker: boolean }): Promise<void> {
  const runtime = createRuntime({ env: process.env, withAudit: parts.worker });
  let app: FastifyInstance | undefined;
  let worker: Worker | undefined;

  try {
    if (parts.api) {
      app = await buildServer(runtime);
      await app.listen({ host: runtime.config.host, port: runtime.config.port });
    }
    if (parts.worker) {
      worker = startWorker(runtime);
      runtime.logger.info({ queue: runtime.config.queueName, concurrency: runtime.config.workerConcurrency }, 'worker started');
    }
  } catch (error) {
    await app?.close();
    await runtime.close();
    throw error;
  }

  const stop = async (signal: string): Promise<void> => {
    runtime.logger.info({ signal }, 'stopping');
    await app?.close();
    await worker?.close();
    await runtime.close();
    runtime.logger.info('stopped');
  };
  process.once('SIGINT', (signal) => void stop(signal));
  process.once('SIGTERM', (signal) => void stop(signal));
}
