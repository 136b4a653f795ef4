import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BoundaryPoint } from '../../src/engine/rotation.js';

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

  function bounded<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`worker child: ${what} within ${timeoutMs} ms at boundary ${boundary}; its output:\n${chunks.join('')}`)), timeoutMs);
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
