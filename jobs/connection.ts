import { Redis } from 'ioredis';

/**
 * Opens a Redis connection for BullMQ or rekey's records. BullMQ's blocking worker connections
 * require `maxRetriesPerRequest: null`. The same setting on every connection keeps commands
 * waiting through a Redis restart instead of failing after a few retries.
 */
export function connectRedis(url: string, options: { lazy?: boolean } = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: options.lazy ?? false });
}
