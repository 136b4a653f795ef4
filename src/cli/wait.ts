import { sleep } from '../engine/poll.js';
import type { RunStatusView } from '../../jobs/status.js';
import type { RekeyClient } from './client.js';
import { formatCredential, isRunFinished } from './render.js';

/**
 * Polls a run until it ends. Unless `quiet`, it prints a credential's line each time its step or
 * outcome changes, so an operator sees progress live.
 */
export async function waitForRun(client: RekeyClient, runId: string, options: { intervalMs: number; quiet: boolean }): Promise<RunStatusView> {
  const printed = new Map<string, string>();
  for (;;) {
    const run = await client.status(runId);
    if (!options.quiet) {
      for (const credential of run.credentials) {
        const line = formatCredential(credential);
        if (printed.get(credential.credentialId) !== line) {
          printed.set(credential.credentialId, line);
          console.log(line);
        }
      }
    }
    if (isRunFinished(run)) return run;
    await sleep(options.intervalMs);
  }
}
