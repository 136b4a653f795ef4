#!/usr/bin/env node
import { Command, Option } from 'commander';
import { verifyAuditFile, DEFAULT_AUDIT_FILE } from '../audit/index.js';
import { InventoryError } from '../inventory/load.js';
import { ConfigError } from '../config.js';
import { ApiError, RekeyClient } from './client.js';
import { runServe } from './serve.js';
import { waitForRun } from './wait.js';
import { formatRun } from './render.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const program = new Command()
  .name('rekey')
  .description('Rotate every credential an environment could reach: mint, stage, verify, promote, revoke, audit.')
  .showHelpAfterError();

program.command('serve').description('run the API and a worker in one process').action(() => runServe({ api: true, worker: true }));
program.command('api').description('run the API only').action(() => runServe({ api: true, worker: false }));
program.command('worker').description('run a worker only').action(() => runServe({ api: false, worker: true }));

program
  .command('rotate')
  .description('ask the API to rotate the credentials of an environment')
  .argument('<environment>', 'environment name from the inventory')
  .option('--credential <id>', 'rotate only this credential (repeatable)', collect, [])
  .option('--incident', 'incident mode: delete each old credential as soon as its replacement is verified', false)
  .option('--reason <text>', 'why the rotation runs, recorded in the audit trail', 'requested from the CLI')
  .option('--dry-run', 'run the preflight only and print the plan; change nothing', false)
  .option('--wait', 'follow the run until it ends; exit 1 if a credential failed', false)
  .option('--json', 'print JSON instead of text', false)
  .addOption(new Option('--interval <ms>', 'polling interval of --wait, in milliseconds').default(1000).argParser(Number))
  .action(async (environment: string, options: { credential: string[]; incident: boolean; reason: string; dryRun: boolean; wait: boolean; json: boolean; interval: number }) => {
    const client = RekeyClient.fromEnv(process.env);
    const submitted = await client.rotate(environment, {
      reason: options.reason,
      mode: options.incident ? 'incident' : 'scheduled',
      ...(options.credential.length > 0 ? { credentials: options.credential } : {}),
      ...(options.dryRun ? { dryRun: true } : {}),
    });
    if (!options.wait && !options.dryRun) {
      console.log(options.json ? JSON.stringify(submitted, null, 2) : `run ${submitted.runId} accepted; follow it with: rekey status ${submitted.runId}`);
      return;
    }
    const run = await waitForRun(client, submitted.runId, { intervalMs: options.interval, json: options.json });
    if (options.json) console.log(JSON.stringify(run, null, 2));
    else console.log(formatRun(run));
    process.exitCode = run.status === 'completed' ? 0 : 1;
  });

program
  .command('status')
  .description('print the status of a run')
  .argument('<runId>', 'run id returned by rotate')
  .option('--json', 'print JSON instead of text', false)
  .action(async (runId: string, options: { json: boolean }) => {
    const run = await RekeyClient.fromEnv(process.env).status(runId);
    console.log(options.json ? JSON.stringify(run, null, 2) : formatRun(run));
  });

const audit = program.command('audit').description('work with the audit trail');
audit
  .command('verify')
  .description('check the hash chain of the audit trail; exit 1 at the first broken record')
  .option('--file <path>', 'audit file (default: REKEY_AUDIT_FILE or .rekey/audit.jsonl)')
  .action(async (options: { file?: string }) => {
    const path = options.file ?? process.env.REKEY_AUDIT_FILE ?? DEFAULT_AUDIT_FILE;
    const result = await verifyAuditFile(path);
    if (result.ok) {
      console.log(`audit trail ${path}: ${result.records} records, chain intact`);
      return;
    }
    console.error(`audit trail ${path}: broken at line ${result.line}: ${result.reason} (${result.records} valid records before it)`);
    process.exitCode = 1;
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof InventoryError || error instanceof ConfigError) {
    console.error(error.message);
    process.exitCode = 2;
    return;
  }
  if (error instanceof ApiError) {
    console.error(`rekey API error ${error.status} ${error.code}: ${error.message}`);
  } else {
    console.error(`rekey: ${(error as Error).message}`);
  }
  process.exitCode = 1;
});
