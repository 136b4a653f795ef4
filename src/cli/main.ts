#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { createFileStore } from '../../providers/file-store/index.js';
import { auditLocation, describeAuditLocation, readAuditPage, verifyAudit, type AuditLocation } from '../audit/select.js';
import { InventoryError } from '../inventory/load.js';
import { ConfigError } from '../config.js';
import { describeTokenStoreLocation, openTokenStore, tokenStoreLocation } from '../api/token-store-select.js';
import { ROLES, type Role, type TokenStore } from '../api/tokens.js';
import { parseDuration } from '../inventory/schema.js';
import { JOB } from '../../jobs/types.js';
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
    // A dry run changes nothing, so only its final plan is worth printing.
    const run = await waitForRun(client, submitted.runId, { intervalMs: options.interval, quiet: options.json || options.dryRun });
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

program
  .command('force-close')
  .description("close a credential's stuck rotation so a new one can start (admin); calls no provider or store")
  .argument('<environment>', 'environment name from the inventory')
  .argument('<credentialId>', 'credential id from the inventory')
  .requiredOption('--reason <text>', 'why the rotation is closed, recorded in the audit trail (1 to 500 characters)')
  .option('--json', 'print JSON instead of text', false)
  .action(async (environment: string, credentialId: string, options: { reason: string; json: boolean }) => {
    const result = await RekeyClient.fromEnv(process.env).forceClose(environment, credentialId, options.reason);
    if (options.json) {
      console.log(JSON.stringify(result, null, 2));
      return;
    }
    const removed = result.removedJobs.map((job) => `${job.name} ${job.id} (${job.state})`).join(', ');
    console.log(`force-closed rotation ${result.rotationId} of run ${result.runId} (${result.closed}, was ${result.previousOutcome}); removed jobs: ${removed === '' ? 'none' : removed}; claim ${result.releasedClaim ? 'released' : 'not held'}`);
    const revokeRemoved = result.closed === 'revocation-pending' || result.removedJobs.some((job) => job.name === JOB.revoke);
    if (revokeRemoved && result.lastRotation.oldKeyId !== null) {
      console.error(`warning: old key ${result.lastRotation.oldKeyId} was never revoked by rekey and may still work; check it and revoke it by hand`);
    }
  });

const token = program
  .command('token')
  .description('manage API tokens: in REKEY_TOKENS_FILE when set, else in PostgreSQL when REKEY_TOKENS_DATABASE_URL or DATABASE_URL is set, else in .rekey/tokens.json');
token
  .command('create')
  .description('create an API token and print it once; only its SHA-256 is stored')
  .requiredOption('--role <role>', `role of the token: ${ROLES.join(', ')}`)
  .option('--environment <name>', 'limit the token to this environment (repeatable; default all)', collect, [])
  .option('--expires <duration>', 'lifetime, such as 90d or 12h (default: no expiry)')
  .option('--description <text>', 'what the token is for', '')
  .action(async (options: { role: string; environment: string[]; expires?: string; description: string }) => {
    if (!(ROLES as readonly string[]).includes(options.role)) throw new Error(`invalid role "${options.role}": use ${ROLES.join(', ')}`);
    const expiresInMs = options.expires === undefined ? null : parseDuration(options.expires);
    const created = await withTokenStore((tokens) => tokens.create({
      role: options.role as Role,
      environments: options.environment.length === 0 ? null : options.environment,
      expiresInMs,
      description: options.description,
    }));
    console.error(`created token ${created.stored.id} (${created.stored.role}${created.stored.environments === null ? '' : `, ${created.stored.environments.join(', ')}`}${created.stored.expiresAt === null ? '' : `, expires ${created.stored.expiresAt}`}); it is shown once:`);
    console.log(created.token);
  });
token
  .command('list')
  .description('list API tokens: id, role, environments, expiry; never the tokens')
  .action(async () => {
    for (const stored of await withTokenStore((tokens) => tokens.list())) {
      console.log(`${stored.id}  ${stored.role.padEnd(8)} ${(stored.environments?.join(',') ?? 'all').padEnd(20)} expires ${stored.expiresAt ?? 'never'}  ${stored.description}`);
    }
  });
token
  .command('revoke')
  .description('delete an API token by id')
  .argument('<id>', 'token id, as rekey token list shows it')
  .action(async (id: string) => {
    if (!(await withTokenStore((tokens) => tokens.revoke(id)))) {
      console.error(`no token with id ${id} in the ${describeTokenStoreLocation(tokenStoreLocation(process.env))}`);
      process.exitCode = 1;
      return;
    }
    console.log(`token ${id} revoked`);
  });

/** Opens the token store the environment selects, runs `work` and closes the store. */
async function withTokenStore<T>(work: (tokens: TokenStore) => T | Promise<T>): Promise<T> {
  const tokens = await openTokenStore(tokenStoreLocation(process.env));
  try {
    return await work(tokens);
  } finally {
    await tokens.close?.();
  }
}

const store = program.command('store').description('read the encrypted file store (REKEY_FILE_STORE, key from REKEY_MASTER_KEY or REKEY_MASTER_KEY_FILE)');
store
  .command('list')
  .description('list the secrets in the file store: path, current key id, version; never values')
  .option('--json', 'print JSON instead of text', false)
  .action(async (options: { json: boolean }) => {
    const secrets = await createFileStore(process.env).listSecrets();
    if (options.json) {
      console.log(JSON.stringify(secrets, null, 2));
      return;
    }
    for (const secret of secrets) {
      console.log(`${secret.path.padEnd(32)} current ${secret.currentKeyId ?? '-'}  version ${secret.version ?? '-'}  pending ${secret.pendingRotationId ?? '-'}  updated ${secret.updatedAt}`);
    }
  });
store
  .command('get')
  .description('print the current value of a secret as JSON, for a workload or an operator; this prints the secret')
  .argument('<path>', 'secret path, as in the inventory store target')
  .action(async (path: string) => {
    const value = await createFileStore(process.env).readCurrentValue(path);
    if (value === null) {
      console.error(`no current value at "${path}" in the file store; rekey store list shows the paths`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`${value.reveal()}\n`);
    value.wipe();
  });

const audit = program.command('audit').description('work with the audit trail (a PostgreSQL table when DATABASE_URL or REKEY_AUDIT_DATABASE_URL is set, else REKEY_AUDIT_FILE)');

function selectedAuditLocation(file: string | undefined): AuditLocation {
  return file === undefined ? auditLocation(process.env) : { kind: 'file', path: file };
}

audit
  .command('verify')
  .description('check the hash chain of the audit trail; exit 1 at the first broken record')
  .option('--file <path>', 'verify this audit file instead of the configured trail')
  .action(async (options: { file?: string }) => {
    const location = selectedAuditLocation(options.file);
    const name = describeAuditLocation(location);
    if (location.kind === 'file' && !existsSync(location.path)) {
      console.error(`audit trail ${name} not found; pass --file or set REKEY_AUDIT_FILE`);
      process.exitCode = 1;
      return;
    }
    const result = await verifyAudit(location);
    if (!result.ok) {
      const where = location.kind === 'file' ? `line ${result.line}` : `seq ${result.line}`;
      console.error(`audit trail ${name}: broken at ${where}: ${result.reason} (${result.records} valid records before it)`);
      process.exitCode = 1;
      return;
    }
    console.log(`audit trail ${name}: ${result.records} records, chain intact`);
    // Cutting records off the end leaves a valid chain; comparing this line with a copy kept
    // elsewhere detects it.
    if (location.kind === 'file') {
      const last = readFileSync(location.path, 'utf8').trimEnd().split('\n').at(-1);
      if (last !== undefined && last !== '') {
        const record = JSON.parse(last) as { seq: number; hash: string };
        console.log(`last record: seq ${record.seq}, hash ${record.hash}`);
      }
    }
  });

const CSV_COLUMNS = ['seq', 'time', 'runId', 'rotationId', 'environment', 'credentialId', 'provider', 'step', 'outcome', 'actor', 'trigger', 'oldKeyId', 'newKeyId', 'errorCode', 'hash'] as const;

function csvField(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

audit
  .command('export')
  .description('write the audit trail to standard output, oldest first, optionally filtered')
  .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
  .option('--environment <name>', 'only records of this environment')
  .option('--credential <id>', 'only records of this credential')
  .option('--run <runId>', 'only records of this run')
  .option('--from <time>', 'only records at or after this ISO 8601 time')
  .option('--to <time>', 'only records before this ISO 8601 time')
  .option('--file <path>', 'export this audit file instead of the configured trail')
  .action(async (options: { format: 'jsonl' | 'csv'; environment?: string; credential?: string; run?: string; from?: string; to?: string; file?: string }) => {
    const location = selectedAuditLocation(options.file);
    const filters = {
      environment: options.environment,
      credentialId: options.credential,
      runId: options.run,
      from: options.from === undefined ? undefined : new Date(options.from),
      to: options.to === undefined ? undefined : new Date(options.to),
    };
    if (options.format === 'csv') console.log(CSV_COLUMNS.join(','));
    let afterSeq: number | undefined;
    for (;;) {
      const page = await readAuditPage(location, { filters, limit: 1000, afterSeq });
      for (const record of page.records) {
        if (options.format === 'jsonl') {
          console.log(JSON.stringify(record));
          continue;
        }
        const row: Record<string, unknown> = { ...record, errorCode: record.error?.code };
        console.log(CSV_COLUMNS.map((column) => csvField(row[column])).join(','));
      }
      if (page.nextAfterSeq === null) break;
      afterSeq = page.nextAfterSeq;
    }
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
