// Runs a rekey worker from the compiled product in dist/ that kills its own process with SIGKILL
// at one step boundary of a rotation, so a crash test can hand the job to another worker. With
// REKEY_TEST_STALL_MS set, it blocks its event loop that long at the boundary instead, once, and
// then goes on: a worker that lost its lock without dying.
//
// Environment: every rekey setting the worker needs (the test passes its harness environment),
// plus REKEY_TEST_KILL_AT, the boundary (one of BoundaryPoint in src/engine/rotation.ts), and
// optionally REKEY_TEST_STALL_MS. The process logs as rekey does, to stdout.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BOUNDARIES = ['inspected', 'minted', 'staged', 'applied', 'verified', 'promoted', 'revoked'];

const killAt = process.env.REKEY_TEST_KILL_AT;
if (killAt === undefined || !BOUNDARIES.includes(killAt)) {
  console.error(`kill-worker: REKEY_TEST_KILL_AT="${killAt ?? ''}" is invalid: expected one of ${BOUNDARIES.join(', ')}`);
  process.exit(2);
}

const stallText = process.env.REKEY_TEST_STALL_MS;
const stallMs = stallText === undefined ? null : Number(stallText);
if (stallMs !== null && !(Number.isInteger(stallMs) && stallMs > 0)) {
  console.error(`kill-worker: REKEY_TEST_STALL_MS="${stallText}" is invalid: expected a positive integer`);
  process.exit(2);
}
let stalled = false;

const distDirectory = fileURLToPath(new URL('../../dist/', import.meta.url));
const workerModule = `${distDirectory}jobs/worker.js`;
const runtimeModule = `${distDirectory}jobs/runtime.js`;
if (!existsSync(workerModule) || !existsSync(runtimeModule)) {
  console.error(`kill-worker: ${workerModule} or ${runtimeModule} is missing; run npm run build first`);
  process.exit(2);
}

const { createRuntime } = await import(pathToFileURL(runtimeModule).href);
const { startWorker } = await import(pathToFileURL(workerModule).href);

const runtime = createRuntime({ env: process.env, withAudit: true });
startWorker(runtime, {
  atBoundary(point) {
    // The engine calls this after it saved the state of the step that just ended, so dying here
    // is a crash between two steps. SIGKILL cannot be caught: no cleanup of any kind runs.
    if (point !== killAt) return;
    if (stallMs === null) process.kill(process.pid, 'SIGKILL');
    if (stalled) return;
    stalled = true;
    // Blocks the whole process, timers included: no lock renewal, no stalled check, no I/O.
    console.log(JSON.stringify({ msg: 'kill-worker: stalling', boundary: point, stallMs }));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, stallMs);
    console.log(JSON.stringify({ msg: 'kill-worker: awake', boundary: point }));
  },
});
