import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'bullmq';
import { startWorker } from '../../jobs/worker.js';
import { verifyAuditFile, type AuditSink } from '../../src/audit/index.js';
import { createAuditSinkFor } from '../../src/audit/select.js';
import type { BoundaryPoint } from '../../src/engine/rotation.js';
import type { Harness } from './harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KILL_WORKER_SCRIPT = `${ROOT}test/support/kill-worker.mjs`;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A worker process started from test/support/kill-worker.mjs. */
export interface WorkerChild {
  /** Resolves when the child exits, or rejects after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<ChildExit>;
  /** Resolves once the child's output contains `text`, or rejects after `timeoutMs`. */
  waitForOutput(text: string, timeoutMs: number): Promise<void>;
  /** The child's stdout and stderr so far. */
  output(): string;
  /** Stops the child with SIGTERM if it still runs. */
  stop(): void;
}

/**
 * Starts a compiled worker in a child process that dies with SIGKILL at `boundary`, or, with
 * `stallMs`, blocks its event loop that long there once and goes on.
 */
export function spawnWorkerChild(env: Record<string, string>, boundary: BoundaryPoint, options: { stallMs?: number } = {}): WorkerChild {
  const chunks: string[] = [];
  const listeners = new Set<() => void>();
  const childEnv: Record<string, string> = { ...env, AWS_EC2_METADATA_DISABLED: 'true', REKEY_TEST_KILL_AT: boundary, REKEY_LOG_LEVEL: 'warn' };
  if (options.stallMs !== undefined) childEnv.REKEY_TEST_STALL_MS = String(options.stallMs);
  const child = spawn(process.execPath, [KILL_WORKER_SCRIPT], {
    cwd: ROOT,
    // Only the harness settings: the child must not inherit another AWS identity or endpoint.
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (chunk: Buffer): void => {
    chunks.push(chunk.toString('utf8'));
    for (const listener of listeners) listener();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  function bounded<T>(promise: Promise<T>, timeoutMs: number, failure: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`worker child: ${failure} within ${timeoutMs} ms at boundary ${boundary}; its output:\n${chunks.join('')}`)), timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  return {
    waitForExit: (timeoutMs) => bounded(exited, timeoutMs, 'no exit'),
    waitForOutput(text, timeoutMs) {
      const seen = new Promise<void>((resolve) => {
        const check = (): void => {
          if (!chunks.join('').includes(text)) return;
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
        check();
      });
      return bounded(seen, timeoutMs, `no "${text}" in the output`);
    },
    output: () => chunks.join(''),
    stop(): void {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

/** What a rotation through a killed worker left: the run, its one credential and the rotation's audit records. */
export interface KilledRun {
  runStatus: string;
  credential: { outcome: string; oldKeyId: string | null; newKeyId: string };
  auditRecords: Array<Record<string, unknown>>;
  auditIntact: boolean;
}

/**
 * Rotates the harness's environment `ci` in incident mode through a child worker killed with
 * SIGKILL at `boundary`, then lets a second worker take the job over and finish it. The harness
 * must run without a worker of its own.
 */
export async function rotateThroughKilledWorker(harness: Harness, boundary: BoundaryPoint, reason: string): Promise<KilledRun> {
  const child = spawnWorkerChild(harness.env, boundary);
  let takeover: { worker: Worker; audit: AuditSink } | undefined;
  try {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth, payload: { reason, mode: 'incident' } });
    if (response.statusCode !== 202) throw new Error(`rotation request failed: ${response.statusCode} ${response.body}`);
    const submitted = response.json() as { runId: string; credentials: Array<{ rotationId: string }> };

    const exit = await child.waitForExit(30_000);
    if (exit.signal !== 'SIGKILL') throw new Error(`worker child ended with ${JSON.stringify(exit)} instead of SIGKILL; its output:\n${child.output()}`);
    // The harness opens no audit trail without a worker, so the takeover worker gets its own sink.
    const audit = createAuditSinkFor(harness.env);
    takeover = { worker: startWorker({ ...harness.runtime, audit }), audit };
    const run = await harness.waitForRun(submitted.runId, 45_000);
    const status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${submitted.runId}`, headers: harness.auth })).json() as { credentials: Array<KilledRun['credential']> };

    // The run's last audit record may follow its status change, so the worker stops first.
    await takeover.worker.close();
    await takeover.audit.close();
    const auditFile = harness.env.REKEY_AUDIT_FILE ?? '';
    const rotationId = submitted.credentials[0]?.rotationId;
    return {
      runStatus: run.status,
      credential: status.credentials[0]!,
      auditRecords: readFileSync(auditFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>).filter((record) => record.rotationId === rotationId),
      auditIntact: (await verifyAuditFile(auditFile)).ok,
    };
  } finally {
    child.stop();
    await takeover?.worker.close();
    await takeover?.audit.close();
  }
}
