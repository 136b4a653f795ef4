import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { createRuntime, type Runtime } from '../../jobs/runtime.js';
import { startWorker } from '../../jobs/worker.js';
import type { RunRecord } from '../../jobs/types.js';
import { buildServer } from '../../src/api/server.js';
import type { RotationHooks } from '../../src/engine/rotation.js';
import { createLogger } from '../../src/logger.js';
import type { Registry } from '../../src/registry.js';
import { motoEnv } from './moto.js';

export const REDIS_URL = 'redis://127.0.0.1:6379';
export const POSTGRES_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface Harness {
  runtime: Runtime;
  app: FastifyInstance;
  worker: Worker | null;
  dir: string;
  env: Record<string, string>;
  token: string;
  /** Every log line the API and the worker wrote, as JSON text. */
  logs: string[];
  auth: { authorization: string };
  waitForRun(runId: string, timeoutMs?: number): Promise<RunRecord>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** The inventory, as YAML text. */
  inventory: string;
  /** Further files written beside the inventory before start, by name. */
  files?: Record<string, string>;
  env?: Record<string, string>;
  worker?: boolean;
  atBoundary?: RotationHooks['atBoundary'];
  registry?: (env: Record<string, string>) => Registry;
}

/**
 * Starts an API (for inject) and a worker against the real Redis, with a queue name, Redis key
 * prefix and temporary directory of their own, so tests never see each other's jobs or files.
 */
export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'rekey-test-'));
  const suffix = randomBytes(4).toString('hex');
  const token = randomBytes(24).toString('base64url');
  writeFileSync(join(dir, 'inventory.yaml'), options.inventory);
  for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), content);
  const env: Record<string, string> = {
    AWS_EC2_METADATA_DISABLED: 'true',
    REDIS_URL,
    REKEY_QUEUE: `rotations-${suffix}`,
    REKEY_REDIS_PREFIX: `rekey-test-${suffix}`,
    REKEY_INVENTORY: join(dir, 'inventory.yaml'),
    REKEY_API_TOKEN: token,
    REKEY_FILE_STORE: join(dir, 'secrets.enc'),
    REKEY_MASTER_KEY_FILE: join(dir, 'master.key'),
    REKEY_AUDIT_FILE: join(dir, 'audit.jsonl'),
    REKEY_FINGERPRINT_KEY_FILE: join(dir, 'fingerprint.key'),
    REKEY_TOKENS_FILE: join(dir, 'tokens.json'),
    // High enough that suites sending thousands of requests are not limited; one test lowers it.
    REKEY_RATE_LIMIT_PER_MINUTE: '1000000',
    REKEY_AUTH_FAILURES_PER_MINUTE: '1000000',
    REKEY_POSTGRES_URL: POSTGRES_ADMIN_URL,
    REKEY_REDIS_ACL_URL: REDIS_URL,
    REKEY_AWS_VERIFY_WINDOW_MS: '20000',
    REKEY_AWS_VERIFY_INTERVAL_MS: '200',
    ...motoEnv(),
    ...options.env,
  };

  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const runtime = createRuntime({ env, logger, withAudit: options.worker !== false, registry: options.registry?.(env) });
  const app = await buildServer(runtime);
  await app.ready();
  const worker = options.worker === false ? null : startWorker(runtime, { atBoundary: options.atBoundary });

  return {
    runtime,
    app,
    worker,
    dir,
    env,
    token,
    logs,
    auth: { authorization: `Bearer ${token}` },
    async waitForRun(runId: string, timeoutMs = 60_000): Promise<RunRecord> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const run = await runtime.records.getRun(runId);
        if (run !== null && (run.status === 'completed' || run.status === 'failed')) return run;
        if (Date.now() > deadline) throw new Error(`run ${runId} did not finish within ${timeoutMs} ms (status ${run?.status ?? 'missing'})`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async close(): Promise<void> {
      await worker?.close();
      await app.close();
      await runtime.queue.obliterate({ force: true }).catch(() => undefined);
      const keys = await runtime.redis.keys(`${env.REKEY_REDIS_PREFIX}:*`);
      if (keys.length > 0) await runtime.redis.del(...keys);
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
