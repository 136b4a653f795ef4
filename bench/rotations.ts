import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createRuntime } from '../jobs/runtime.js';
import { submitRotation } from '../jobs/submit.js';
import { startWorker } from '../jobs/worker.js';
import { createLogger } from '../src/logger.js';

/**
 * Measures how long one run takes to rotate N generated secrets through the real queue, worker,
 * encrypted file store and audit trail, on the Redis at REDIS_URL. Generated secrets have no
 * provider round trip, so the numbers are rekey's own overhead per credential.
 */
interface Result {
  credentials: number;
  concurrency: number;
  seconds: number;
  credentialsPerSecond: number;
  auditRecords: number;
}

const SIZES = (process.env.REKEY_BENCH_SIZES ?? '50,200,500').split(',').map(Number);
const CONCURRENCY = Number(process.env.REKEY_WORKER_CONCURRENCY ?? '8');

function inventoryOf(count: number): string {
  const credentials = Array.from({ length: count }, (_unused, index) => `
      - id: secret-${index}
        kind: generated-secret
        params: {}
        stores:
          - store: file
            path: bench/secret-${index}`).join('');
  return `environments:\n  bench:\n    credentials:${credentials}\n`;
}

async function measure(count: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'rekey-bench-'));
  const suffix = randomBytes(4).toString('hex');
  writeFileSync(join(dir, 'inventory.yaml'), inventoryOf(count));
  const env = {
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REKEY_INVENTORY: join(dir, 'inventory.yaml'),
    REKEY_QUEUE: `bench-${suffix}`,
    REKEY_REDIS_PREFIX: `rekey-bench-${suffix}`,
    REKEY_FILE_STORE: join(dir, 'secrets.enc'),
    REKEY_MASTER_KEY_FILE: join(dir, 'master.key'),
    REKEY_AUDIT_FILE: join(dir, 'audit.jsonl'),
    REKEY_FINGERPRINT_KEY_FILE: join(dir, 'fingerprint.key'),
    REKEY_WORKER_CONCURRENCY: String(CONCURRENCY),
  };
  const runtime = createRuntime({ env, withAudit: true, logger: createLogger({ level: 'warn' }) });
  const worker = startWorker(runtime);
  try {
    const started = process.hrtime.bigint();
    const submitted = await submitRotation(runtime, { environment: 'bench', mode: 'incident', reason: 'benchmark', dryRun: false, actor: 'bench', trigger: 'cli' });
    for (;;) {
      const run = await runtime.records.getRun(submitted.runId);
      if (run?.status === 'failed') throw new Error(`run ${submitted.runId} failed`);
      if (run?.status === 'completed') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { readFileSync } = await import('node:fs');
    const auditRecords = readFileSync(env.REKEY_AUDIT_FILE, 'utf8').trim().split('\n').length;
    return { credentials: count, concurrency: CONCURRENCY, seconds: Number(seconds.toFixed(2)), credentialsPerSecond: Number((count / seconds).toFixed(1)), auditRecords };
  } finally {
    await worker.close();
    await runtime.queue.obliterate({ force: true });
    const keys = await runtime.redis.keys(`${env.REKEY_REDIS_PREFIX}:*`);
    if (keys.length > 0) await runtime.redis.del(...keys);
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: Result[] = [];
for (const size of SIZES) {
  const result = await measure(size);
  results.push(result);
  console.log(`${result.credentials} credentials: ${result.seconds} s, ${result.credentialsPerSecond} credentials/s, ${result.auditRecords} audit records`);
}
mkdirSync('bench/results', { recursive: true });
const record = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), results };
writeFileSync('bench/results/rotations.json', `${JSON.stringify(record, null, 2)}\n`);
console.log('written to bench/results/rotations.json');
