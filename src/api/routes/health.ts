import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../../jobs/runtime.js';
import { sendProblem } from '../problem.js';

const PING_TIMEOUT_MS = 2000;

export function registerHealthRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get('/healthz', { config: { auth: false, rateLimit: false } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config: { auth: false, rateLimit: false } }, async (_request, reply) => {
    try {
      await Promise.race([
        runtime.redis.ping(),
        new Promise((_resolve, reject) => setTimeout(() => reject(new Error('timed out')), PING_TIMEOUT_MS).unref()),
      ]);
    } catch (error) {
      return sendProblem(reply, 503, 'NOT_READY', `Redis at the configured REDIS_URL did not respond to PING: ${(error as Error).message}`);
    }
    return { status: 'ready', inventory: runtime.inventory.source, environments: runtime.inventory.environments.size };
  });
}
