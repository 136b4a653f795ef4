import { hostname } from 'node:os';
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AuditSink } from '../src/audit/index.js';
import { guardAuditSink } from '../src/audit/guard.js';
import { createAuditSinkFor } from '../src/audit/select.js';
import { readCallLimitOverrides } from '../src/call-limits.js';
import type { Env } from '../src/contracts.js';
import { loadFingerprintKey, readConfig, type RekeyConfig } from '../src/config.js';
import { loadInventory } from '../src/inventory/load.js';
import type { Inventory } from '../src/inventory/schema.js';
import { createLogger } from '../src/logger.js';
import type { Registry } from '../src/registry.js';
import { createRegistry } from '../providers/registry.js';
import { CallGates } from './call-gates.js';
import { connectRedis, logErrorsThrottled } from './connection.js';
import { DependencyIndex, readInventoryDependencies } from './dependencies.js';
import { FingerprintIndex } from './fingerprints.js';
import { Records } from './records.js';

/** Everything the API and the worker share: configuration, inventory, registry, Redis and the queue. */
export interface Runtime {
  config: RekeyConfig;
  env: Env;
  logger: Logger;
  inventory: Inventory;
  registry: Registry;
  redis: Redis;
  records: Records;
  /** Concurrency, rate and time limits of provider and store calls, by kind. */
  gates: CallGates;
  fingerprints: FingerprintIndex;
  dependencies: DependencyIndex;
  queue: Queue;
  flows: FlowProducer;
  /** Opened by workers. The API writes the audit trail only for an admin force-close. */
  audit: AuditSink | null;
  fingerprintKey: Buffer;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  env: Env;
  logger?: Logger;
  /** Open the audit trail (the worker does; the API does not). */
  withAudit: boolean;
  registry?: Registry;
}

/**
 * Builds the runtime from the environment. Loading the inventory comes first so an invalid file
 * stops the process before it connects to anything.
 */
export function createRuntime(options: RuntimeOptions): Runtime {
  const config = readConfig(options.env);
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const registry = options.registry ?? createRegistry(options.env);
  const inventory = loadInventory(config.inventoryPath, registry);
  const inventoryDependencies = readInventoryDependencies(inventory);
  const fingerprintKey = loadFingerprintKey(config);
  const callLimitOverrides = readCallLimitOverrides(options.env, new Set([...registry.providerKinds(), ...registry.storeKinds()]));

  const redis = connectRedis(config.redisUrl, { failFast: true });
  logErrorsThrottled(redis, logger, 'runtime');
  const records = new Records(redis, config.redisPrefix);
  const queue = new Queue(config.queueName, { connection: redis, prefix: config.redisPrefix });
  const flows = new FlowProducer({ connection: redis, prefix: config.redisPrefix });
  logErrorsThrottled(queue, logger, 'queue');
  logErrorsThrottled(flows, logger, 'flow producer');
  const audit = options.withAudit ? openGuardedAudit(options.env, records, logger) : null;

  return {
    config,
    env: options.env,
    logger,
    inventory,
    registry,
    redis,
    records,
    gates: new CallGates(redis, config.redisPrefix, callLimitOverrides),
    fingerprints: new FingerprintIndex(redis, config.redisPrefix, fingerprintKey),
    dependencies: new DependencyIndex(redis, config.redisPrefix, inventoryDependencies),
    queue,
    flows,
    audit,
    fingerprintKey,
    async close(): Promise<void> {
      await flows.close();
      await queue.close();
      await audit?.close();
      await registry.close();
      redis.disconnect();
    },
  };
}

/**
 * Opens the audit sink the environment selects, failing closed: while it cannot write, every
 * step waits, this process logs the reason once, and /readyz reports it through Redis.
 */
function openGuardedAudit(env: Env, records: Records, logger: Logger): AuditSink {
  const processId = `${hostname()}:${process.pid}`;
  let lastReported: string | null = null;
  return guardAuditSink(createAuditSinkFor(env), {
    async failing(reason, since) {
      if (lastReported !== since) logger.error({ alert: true, reason, since }, 'the audit trail cannot be written; no rotation step starts until it can');
      lastReported = since;
      await records.reportAuditFailure(processId, reason, since);
    },
    async recovered() {
      lastReported = null;
      logger.warn('the audit trail can be written again; rotation steps resume');
      await records.clearAuditFailure(processId);
    },
  });
}
