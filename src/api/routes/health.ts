import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../../jobs/runtime.js';
import { sendProblem } from '../problem.js';

const PING_TIMEOUT_MS = 2000;
/**
 * Age past which a worker's report that it could not write the audit trail no longer counts. A
 * worker with waiting jobs renews its report every few seconds while the outage lasts.
 */
const AUDIT_FAILURE_MAX_AGE_MS = 120_000;

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
    const failures = await runtime.records.auditFailures(AUDIT_FAILURE_MAX_AGE_MS);
    if (failures.length > 0) {
      // This route needs no token, so it names no host, process, path or driver error: the
      // worker logs carry those.
      const since = failures.map((failure) => failure.since).sort()[0];
      return sendProblem(reply, 503, 'AUDIT_UNAVAILABLE', `the audit trail cannot be written since ${since ?? 'recently'} (reported by ${failures.length} worker process${failures.length === 1 ? '' : 'es'}), so no rotation step starts until it can; the worker logs give the reason`);
    }
    return { status: 'ready', inventory: runtime.inventory.source, environments: runtime.inventory.environments.size };
  });
}
