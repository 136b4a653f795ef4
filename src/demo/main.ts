import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { createRuntime } from '../../jobs/runtime.js';
import { startWorker } from '../../jobs/worker.js';
import { createFileStore } from '../../providers/file-store/index.js';
import { buildServer } from '../api/server.js';
import { verifyAuditFile } from '../audit/index.js';
import { RekeyClient } from '../cli/client.js';
import { formatRun } from '../cli/render.js';
import { waitForRun } from '../cli/wait.js';
import { createLogger } from '../logger.js';
import { SecretValue } from '../secret.js';
import { DEMO_DIR, prepareDemoInstance, type DemoInstance } from './instance.js';
import { ensureDemoRedis } from './redis.js';

/**
 * Creates the demo's Redis ACL user with a first password if it does not exist yet. The user
 * may only touch keys under its own prefix, away from the queue and run records. The first
 * password is never printed or kept: the rotation replaces it.
 */
async function ensureDemoUser(url: string, instance: DemoInstance): Promise<void> {
  const admin = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    // The key pattern and commands are set on every run (resetkeys touches no password).
    const permissions = ['on', 'resetkeys', `~${instance.keyPrefix}*`, '+@read', '+@write', '+@connection'];
    const existing = await admin.call('ACL', 'GETUSER', instance.user);
    if (existing !== null) {
      await admin.call('ACL', 'SETUSER', instance.user, ...permissions);
      return;
    }
    const first = SecretValue.generate();
    await admin.call('ACL', 'SETUSER', instance.user, ...permissions, `>${first.reveal()}`);
    first.wipe();
  } finally {
    admin.disconnect();
  }
}

/** Logs in as the demo user with the password the store now holds, as the demo application would. */
async function loginWithStoredPassword(url: string, stored: SecretValue, instance: DemoInstance): Promise<string> {
  const { username, password } = JSON.parse(stored.reveal()) as { username: string; password: string };
  const client = new Redis(url, { username, password, maxRetriesPerRequest: 1, lazyConnect: true, enableReadyCheck: false });
  try {
    await client.connect();
    await client.set(`${instance.keyPrefix}last-login`, new Date().toISOString());
    return 'logged in with the stored password';
  } catch (error) {
    return `login failed: ${(error as Error).message}`;
  } finally {
    client.disconnect();
  }
}

async function main(): Promise<number> {
  mkdirSync(DEMO_DIR, { recursive: true, mode: 0o700 });
  const redis = await ensureDemoRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  console.log(redis.child === null ? `Redis: ${redis.url}` : `Redis: nothing responded at REDIS_URL, so the demo started a throwaway one at ${redis.url}`);

  const instance = prepareDemoInstance();
  const token = randomBytes(24).toString('base64url');
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...instance.env,
    REDIS_URL: redis.url,
    REKEY_API_TOKEN: token,
    REKEY_REDIS_ACL_URL: redis.url,
  };
  const auditFile = env.REKEY_AUDIT_FILE ?? `${DEMO_DIR}/audit.jsonl`;

  await ensureDemoUser(redis.url, instance);
  const runtime = createRuntime({ env, withAudit: true, logger: createLogger({ level: process.env.REKEY_LOG_LEVEL ?? 'warn' }) });
  const worker = startWorker(runtime);
  const app = await buildServer(runtime);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });

  try {
    const client = new RekeyClient(address, token);
    const submitted = await client.rotate('demo', { reason: 'demo: rotate everything the demo environment holds', mode: 'incident' });
    console.log(`run ${submitted.runId} accepted by the API at ${address}; progress:`);
    const run = await waitForRun(client, submitted.runId, { intervalMs: 250, quiet: false });
    console.log(`\n${formatRun(run)}\n`);

    const store = createFileStore(env);
    const stored = await store.readCurrentValue('demo/app-redis');
    console.log(`demo application: ${stored === null ? 'no password in the store' : await loginWithStoredPassword(redis.url, stored, instance)}`);

    const audit = await verifyAuditFile(auditFile);
    console.log(audit.ok
      ? `audit trail ${auditFile}: ${audit.records} records, chain intact`
      : `audit trail ${auditFile}: broken at line ${audit.line}: ${audit.reason}`);
    console.log(`secrets: encrypted in ${env.REKEY_FILE_STORE ?? '(unset)'} (key ${env.REKEY_MASTER_KEY_FILE ?? '(unset)'}), at paths demo/app-redis and demo/api-token`);
    console.log('  read one with: set -a; . .rekey/demo/demo.env; set +a; npm exec --no -- rekey store get demo/app-redis');
    console.log(`this checkout's demo settings: ${instance.envFile} (queue ${instance.env.REKEY_QUEUE}, Redis user ${instance.user})`);
    return run.status === 'completed' && audit.ok ? 0 : 1;
  } finally {
    await app.close();
    await worker.close();
    await runtime.close();
    redis.stop();
  }
}

main().then((code) => {
  process.exitCode = code;
}, (error: unknown) => {
  console.error(`demo failed: ${(error as Error).message}`);
  process.exitCode = 1;
});
