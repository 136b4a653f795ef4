import { Redis } from 'ioredis';

/** Retries of one command while Redis is unreachable, on connections that must fail fast. */
const FAIL_FAST_RETRIES = 2;

/**
 * Opens a Redis connection for BullMQ or rekey's records. A worker's blocking connection needs
 * `maxRetriesPerRequest: null` (BullMQ requires it), which keeps commands waiting through a Redis
 * restart. The connection that serves API requests fails fast instead, so a request gets a 503
 * rather than hanging while Redis is down.
 */
export function connectRedis(url: string, options: { failFast?: boolean } = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: options.failFast === true ? FAIL_FAST_RETRIES : null });
}

/** Minimum time between two log lines about a failing connection, so an outage does not flood the log. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * Logs the errors an emitter (a Redis connection, a queue) reports, at most one line per
 * interval, with the number of errors since the last line.
 */
export function logErrorsThrottled(emitter: { on(event: 'error', listener: (error: Error) => void): unknown }, logger: { warn(object: object, message: string): void }, source: string): void {
  let lastLogged = 0;
  let suppressed = 0;
  emitter.on('error', (error: Error) => {
    const now = Date.now();
    if (now - lastLogged < ERROR_LOG_INTERVAL_MS) {
      suppressed += 1;
      return;
    }
    logger.warn({ source, err: error.message, errorsSinceLastLine: suppressed }, 'redis connection error');
    lastLogged = now;
    suppressed = 0;
  });
}
