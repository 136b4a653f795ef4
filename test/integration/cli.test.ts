import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminIamClient, callerIdentity } from '../support/aws.js';
import { createMixedEnvironment, type MixedEnvironment } from '../support/environment.js';
import { POSTGRES_ADMIN_URL, REDIS_URL } from '../support/harness.js';
import { motoEnv } from '../support/moto.js';
import { tryLogin } from '../support/postgres.js';
import { REDIS_ADMIN_URL, tryAuth } from '../support/redis.js';

const CLI = resolve('dist/src/cli/main.js');

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? done(address.port) : fail(new Error('no port'))));
    });
  });
}

function rekey(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('rekey CLI against rekey serve', () => {
  let iam: IAMClient;
  let environment: MixedEnvironment;
  let dir: string;
  let server: ChildProcess;
  let env: Record<string, string>;
  let serverOutput = '';

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
    iam = adminIamClient();
    environment = await createMixedEnvironment(iam);
    dir = mkdtempSync(join(tmpdir(), 'rekey-cli-'));
    writeFileSync(join(dir, 'inventory.yaml'), environment.inventory);
    const port = await freePort();
    const suffix = randomBytes(4).toString('hex');
    env = {
      AWS_EC2_METADATA_DISABLED: 'true',
      REDIS_URL,
      REKEY_PORT: String(port),
      REKEY_URL: `http://127.0.0.1:${port}`,
      REKEY_API_TOKEN: randomBytes(24).toString('base64url'),
      REKEY_INVENTORY: join(dir, 'inventory.yaml'),
      REKEY_QUEUE: `cli-${suffix}`,
      REKEY_REDIS_PREFIX: `rekey-cli-${suffix}`,
      REKEY_FILE_STORE: join(dir, 'secrets.enc'),
      REKEY_MASTER_KEY_FILE: join(dir, 'master.key'),
      REKEY_AUDIT_FILE: join(dir, 'audit.jsonl'),
      REKEY_FINGERPRINT_KEY_FILE: join(dir, 'fingerprint.key'),
      REKEY_POSTGRES_URL: POSTGRES_ADMIN_URL,
      REKEY_REDIS_ACL_URL: REDIS_URL,
      ...motoEnv(),
    };
    env.REKEY_TOKEN = env.REKEY_API_TOKEN!;

    server = spawn(process.execPath, [CLI, 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout?.on('data', (chunk: Buffer) => { serverOutput += chunk.toString(); });
    server.stderr?.on('data', (chunk: Buffer) => { serverOutput += chunk.toString(); });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ready = await fetch(`${env.REKEY_URL}/readyz`).then((response) => response.ok, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`rekey serve did not become ready:\n${serverOutput}`);
      await new Promise((done) => setTimeout(done, 200));
    }
  }, 60_000);

  afterAll(async () => {
    server?.kill('SIGTERM');
    await new Promise((done) => server?.once('exit', done));
    const cleanup = spawnSync('redis-cli', ['--scan', '--pattern', `${env.REKEY_REDIS_PREFIX}:*`], { encoding: 'utf8' });
    const keys = cleanup.stdout.split('\n').filter((key) => key !== '');
    if (keys.length > 0) spawnSync('redis-cli', ['del', ...keys]);
    await environment?.cleanup();
    iam?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rotates every credential with --incident --wait and exits 0', () => {
    const result = rekey(['rotate', 'ci', '--incident', '--wait', '--reason', 'compromised package', '--interval', '200'], env);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const summary = result.stdout.slice(result.stdout.lastIndexOf('run '));
    expect(summary).toMatch(/^run [0-9a-f-]{36} \(ci, incident\): completed/);
    for (const credential of ['deployer-aws', 'app-db', 'app-cache']) {
      expect(summary).toMatch(new RegExp(`${credential}\\s+rotated\\s+old \\S+ -> new \\S+`));
    }
  });

  it('leaves every old credential rejected', async () => {
    expect(await callerIdentity(environment.aws.key)).toEqual({ error: 'InvalidClientTokenId' });
    expect(await tryLogin(environment.postgres.role, environment.postgres.password)).toBe('28P01');
    expect(await tryAuth(REDIS_ADMIN_URL, environment.redis.user, environment.redis.password)).toBe('WRONGPASS');
  });

  it('lists the file store without values', () => {
    const result = rekey(['store', 'list', '--json'], env);
    expect(result.status).toBe(0);
    const secrets = JSON.parse(result.stdout) as Array<{ path: string; currentKeyId: string | null; version: number }>;
    expect(secrets.map((secret) => [secret.path, secret.version])).toEqual([['ci/app-cache', 1], ['ci/app-db', 1], ['ci/deployer-aws', 1]]);
    expect(result.stdout).not.toContain('password');
  });

  it('prints a stored value that logs in', async () => {
    const result = rekey(['store', 'get', 'ci/app-db'], env);
    expect(result.status).toBe(0);
    const value = JSON.parse(result.stdout) as { username: string; password: string };
    expect(value.username).toBe(environment.postgres.role);
    expect(await tryLogin(environment.postgres.role, value.password)).toBe('ok');
  });

  it('reports a missing store path with exit code 1', () => {
    const result = rekey(['store', 'get', 'ci/nothing'], env);
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe('no current value at "ci/nothing" in the file store; rekey store list shows the paths');
  });

  it('prints a dry run plan without changing anything', () => {
    const result = rekey(['rotate', 'ci', '--dry-run', '--credential', 'app-cache', '--json'], env);
    expect(result.status).toBe(0);
    const plan = JSON.parse(result.stdout) as { dryRun: boolean; status: string; plan: Array<{ credentialId: string; ok: boolean }> };
    expect(plan.dryRun).toBe(true);
    expect(plan.status).toBe('completed');
    expect(plan.plan.map((entry) => [entry.credentialId, entry.ok])).toEqual([['app-cache', true]]);
  });

  it('reports an unknown environment with exit code 1', () => {
    const result = rekey(['rotate', 'nowhere'], env);
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe('rekey API error 404 ENVIRONMENT_NOT_FOUND: environment "nowhere" is not in the inventory; known environments: ci');
  });

  describe('when the audit trail is verified', () => {
    function tampered(change: (lines: string[]) => string[]): string {
      const path = join(dir, `audit-${randomBytes(3).toString('hex')}.jsonl`);
      const lines = readFileSync(env.REKEY_AUDIT_FILE!, 'utf8').trimEnd().split('\n');
      writeFileSync(path, `${change(lines).join('\n')}\n`);
      return path;
    }

    it('passes on the untouched trail', () => {
      const copy = join(dir, 'audit-copy.jsonl');
      copyFileSync(env.REKEY_AUDIT_FILE!, copy);
      const records = readFileSync(copy, 'utf8').trimEnd().split('\n').length;
      const result = rekey(['audit', 'verify', '--file', copy], env);
      expect(result.status).toBe(0);
      const lastLine = JSON.parse(readFileSync(copy, 'utf8').trimEnd().split('\n').at(-1)!) as { seq: number; hash: string };
      expect(result.stdout.trim().split('\n')).toEqual([
        `audit trail ${copy}: ${records} records, chain intact`,
        `last record: seq ${lastLine.seq}, hash ${lastLine.hash}`,
      ]);
    });

    it('exports the trail as CSV and JSONL', () => {
      const records = readFileSync(env.REKEY_AUDIT_FILE!, 'utf8').trimEnd().split('\n').length;
      const csv = rekey(['audit', 'export', '--format', 'csv', '--file', env.REKEY_AUDIT_FILE!], env);
      expect(csv.status).toBe(0);
      const rows = csv.stdout.trimEnd().split('\n');
      expect(rows[0]).toBe('seq,time,runId,rotationId,environment,credentialId,provider,step,outcome,actor,trigger,oldKeyId,newKeyId,errorCode,hash');
      expect(rows).toHaveLength(records + 1);
      const jsonl = rekey(['audit', 'export', '--credential', 'app-db', '--file', env.REKEY_AUDIT_FILE!], env);
      const lines = jsonl.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as { credentialId: string });
      expect(lines.length).toBeGreaterThan(5);
      expect(new Set(lines.map((line) => line.credentialId))).toEqual(new Set(['app-db']));
    });

    it('detects an edited record', () => {
      const path = tampered((lines) => lines.map((line, index) => (index === 4 ? line.replace('"succeeded"', '"failed"').replace('"started"', '"failed"') : line)));
      const result = rekey(['audit', 'verify', '--file', path], env);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/broken at line 5: /);
    });

    it('detects a deleted record', () => {
      const path = tampered((lines) => lines.filter((_line, index) => index !== 6));
      const result = rekey(['audit', 'verify', '--file', path], env);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/broken at line 7: /);
    });

    it('detects reordered records', () => {
      const path = tampered((lines) => {
        const copy = [...lines];
        [copy[2], copy[3]] = [copy[3]!, copy[2]!];
        return copy;
      });
      const result = rekey(['audit', 'verify', '--file', path], env);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/broken at line 3: /);
    });
  });
});
