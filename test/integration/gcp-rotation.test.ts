import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { RekeyError } from '../../src/errors.js';
import { startHarness, type Harness } from '../support/harness.js';
import { ADMIN_ACCOUNT, keyInventory, startGcpTestbed, TEST_PROJECT, TEST_SECRET, tokenStatus, uniqueServiceAccount, type GcpTestbed } from '../support/gcp.js';

const PROJECT = TEST_PROJECT;
const SECRET = TEST_SECRET;

interface RunView {
  status: string;
  credentials: Array<{ credentialId: string; outcome: string; oldKeyId: string | null; newKeyId: string | null; error: { code: string; message: string; retryable: boolean } | null }>;
}

function keyIdOf(keyFile: string): string {
  return (JSON.parse(keyFile) as { private_key_id: string }).private_key_id;
}

function privateKeyOf(keyFile: string): string {
  return (JSON.parse(keyFile) as { private_key: string }).private_key;
}

/** Returns every string and hash value under the harness's Redis prefix, as one text. */
async function redisDump(harness: Harness): Promise<string> {
  let dump = '';
  for (const key of await harness.runtime.redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:*`)) {
    const type = await harness.runtime.redis.type(key);
    if (type === 'string') dump += await harness.runtime.redis.get(key);
    else if (type === 'hash') dump += JSON.stringify(await harness.runtime.redis.hgetall(key));
    else if (type === 'list') dump += JSON.stringify(await harness.runtime.redis.lrange(key, 0, -1));
    else if (type === 'set') dump += JSON.stringify(await harness.runtime.redis.smembers(key));
    else if (type === 'zset') dump += JSON.stringify(await harness.runtime.redis.zrange(key, 0, -1));
  }
  return dump;
}

describe('rotating a GCP service account key through the queue', () => {
  let testbed: GcpTestbed;
  let harness: Harness;
  let account: string;
  let oldKeyFile: string;
  const responses: string[] = [];

  async function rotate(options: {
    verifyWindowMs?: number;
    inventory?: string;
    mode?: 'incident' | 'scheduled';
    atBoundary?: Parameters<typeof startHarness>[0]['atBoundary'];
  } = {}): Promise<RunView> {
    harness = await startHarness({
      inventory: options.inventory ?? keyInventory(account),
      env: { ...testbed.env, REKEY_GCP_VERIFY_WINDOW_MS: String(options.verifyWindowMs ?? 20_000), REKEY_GCP_VERIFY_INTERVAL_MS: '200' },
      atBoundary: options.atBoundary,
    });
    const payload = { reason: 'gcp test', mode: options.mode ?? 'incident' };
    const created = await harness.app.inject({ method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth, payload });
    responses.push(created.body);
    const { runId } = created.json() as { runId: string };
    await harness.waitForRun(runId, 90_000);
    const status = await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth });
    responses.push(status.body);
    responses.push((await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: harness.auth })).body);
    return status.json() as RunView;
  }

  async function start(options: { propagationDelayMs?: number; keys?: number } = {}): Promise<void> {
    testbed = await startGcpTestbed({ propagationDelayMs: options.propagationDelayMs ?? 0 });
    account = uniqueServiceAccount('deployer');
    testbed.fake.createServiceAccount(account);
    oldKeyFile = testbed.fake.addKey(account);
    for (let index = 1; index < (options.keys ?? 1); index += 1) testbed.fake.addKey(account);
    testbed.fake.createSecret(PROJECT, SECRET, [oldKeyFile]);
  }

  afterEach(async () => {
    responses.splice(0);
    await harness?.close();
    await testbed?.close();
  });

  it('replaces the key in Secret Manager and the file store', async () => {
    await start();
    const oldKeyId = keyIdOf(oldKeyFile);

    const run = await rotate();

    expect(run.status).toBe('completed');
    const credential = run.credentials[0]!;
    expect(credential.outcome).toBe('rotated');
    expect(credential.oldKeyId).toBe(oldKeyId);
    const newKeyId = credential.newKeyId!;
    expect(testbed.fake.keyStates(account)).toEqual({ [newKeyId]: 'ENABLED' });

    const versions = testbed.fake.secretVersions(PROJECT, SECRET);
    expect(versions.map((version) => [version.number, version.state])).toEqual([[1, 'DISABLED'], [2, 'ENABLED']]);
    const inSecretManager = versions[1]!.value!;
    const inFile = (await createFileStore(harness.env).readCurrentValue('ci/deployer-gcp'))!.reveal();
    expect(JSON.parse(inFile)).toEqual(JSON.parse(inSecretManager));
    expect(keyIdOf(inSecretManager)).toBe(newKeyId);
    expect(testbed.fake.secretVersions(PROJECT, `${SECRET}-rekey-pending`).map((version) => version.state)).toEqual(['DESTROYED']);

    expect((await tokenStatus(testbed.fake, inSecretManager)).status).toBe(200);
    expect(await tokenStatus(testbed.fake, oldKeyFile)).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } });
  });

  it('disables the old key and schedules its deletion', async () => {
    await start();
    const oldKeyId = keyIdOf(oldKeyFile);

    const run = await rotate({ mode: 'scheduled' });

    expect(run.status).toBe('completed');
    const credential = run.credentials[0]!;
    expect(credential.outcome).toBe('revocation-scheduled');
    expect(testbed.fake.keyStates(account)).toEqual({ [oldKeyId]: 'DISABLED', [credential.newKeyId!]: 'ENABLED' });
    expect((await tokenStatus(testbed.fake, oldKeyFile)).status).toBe(400);
    // The replaced Secret Manager version is disabled only when the old key is deleted.
    expect(testbed.fake.secretVersions(PROJECT, SECRET).map((version) => [version.number, version.state])).toEqual([[1, 'ENABLED'], [2, 'ENABLED']]);
  });

  it('deletes further keys of the account in incident mode', async () => {
    await start({ keys: 3 });
    const before = Object.keys(testbed.fake.keyStates(account));

    const run = await rotate();

    expect(run.status).toBe('completed');
    const credential = run.credentials[0]!;
    expect(before).toContain(credential.oldKeyId);
    expect(testbed.fake.keyStates(account)).toEqual({ [credential.newKeyId!]: 'ENABLED' });
  });

  it('mints again after a crash before stage, deleting the lost key', async () => {
    await start();
    const minted: string[] = [];
    let crashes = 0;

    const run = await rotate({
      atBoundary: (point) => {
        if (point !== 'minted') return;
        minted.push(...Object.keys(testbed.fake.keyStates(account)).filter((keyId) => keyId !== keyIdOf(oldKeyFile) && !minted.includes(keyId)));
        if (crashes === 0) {
          crashes += 1;
          throw new RekeyError('UNAVAILABLE', 'simulated worker crash after mint');
        }
      },
    });

    expect(run.status).toBe('completed');
    expect(minted).toHaveLength(2);
    expect(run.credentials[0]!.newKeyId).toBe(minted[1]);
    expect(testbed.fake.keyStates(account)).toEqual({ [minted[1]!]: 'ENABLED' });
    const deletes = testbed.fake.requests.filter((request) => request.method === 'DELETE').map((request) => request.path.split('/').pop());
    expect(deletes).toEqual([minted[0], keyIdOf(oldKeyFile)]);
  });

  it('waits for a key that propagates within the window', async () => {
    await start({ propagationDelayMs: 1_500 });

    const run = await rotate({ verifyWindowMs: 20_000 });

    expect(run.status).toBe('completed');
    const newKeyId = run.credentials[0]!.newKeyId!;
    expect(testbed.fake.keyStates(account)).toEqual({ [newKeyId]: 'ENABLED' });
    const verified = harness.logs.join('').split('\n').filter((line) => line.includes('"new credential verified"')).map((line) => JSON.parse(line) as { attempts: number });
    expect(verified).toHaveLength(1);
    expect(verified[0]!.attempts).toBeGreaterThan(2);
    const rejected = testbed.fake.requests.filter((request) => request.path === '/token' && request.caller === null);
    expect(rejected.length).toBeGreaterThan(verified[0]!.attempts);
  });

  it('removes a key that is still rejected past the window', async () => {
    await start({ propagationDelayMs: 60_000 });
    const oldKeyId = keyIdOf(oldKeyFile);

    const run = await rotate({ verifyWindowMs: 1_500 });

    expect(run.status).toBe('failed');
    const credential = run.credentials[0]!;
    expect(credential.outcome).toBe('failed');
    expect(credential.error?.code).toBe('VERIFY_FAILED');
    expect(credential.error?.message).toContain(`of ${account}`);
    expect(credential.error?.message).toContain('past the verify window of 1500 ms: invalid_grant (Invalid JWT Signature.)');
    expect(testbed.fake.keyStates(account)).toEqual({ [oldKeyId]: 'ENABLED' });
    expect(testbed.fake.secretVersions(PROJECT, SECRET)).toEqual([{ number: 1, state: 'ENABLED', value: oldKeyFile }]);
    expect(testbed.fake.secretVersions(PROJECT, `${SECRET}-rekey-pending`).map((version) => version.state)).toEqual(['DESTROYED']);
    const file = await createFileStore(harness.env).listSecrets();
    expect(file.map((secret) => [secret.path, secret.currentKeyId, secret.pendingRotationId])).toEqual([['ci/deployer-gcp', null, null]]);
    testbed.fake.propagationDelayMs = 0;
    expect((await tokenStatus(testbed.fake, oldKeyFile)).status).toBe(200);
  });

  it('fails before minting at the key limit', async () => {
    await start({ keys: 10 });
    const before = testbed.fake.keyStates(account);

    const run = await rotate();

    expect(run.status).toBe('failed');
    const error = run.credentials[0]!.error!;
    expect(error.code).toBe('KEY_QUOTA');
    expect(error.message).toContain(`service account ${account} already has the maximum of 10 user-managed keys: `);
    expect(testbed.fake.keyStates(account)).toEqual(before);
    const changes = testbed.fake.requests.filter((request) => request.path.includes('/keys') && request.method !== 'GET');
    expect(changes).toEqual([]);
    expect(testbed.fake.secretVersions(PROJECT, SECRET)).toEqual([{ number: 1, state: 'ENABLED', value: oldKeyFile }]);
  });

  it('reports an organisation policy that forbids keys', async () => {
    await start();
    testbed.fake.disableKeyCreation = true;
    const oldKeyId = keyIdOf(oldKeyFile);

    const run = await rotate();

    expect(run.status).toBe('failed');
    const error = run.credentials[0]!.error!;
    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`forbids creating keys for service account ${account}`);
    expect(testbed.fake.keyStates(account)).toEqual({ [oldKeyId]: 'ENABLED' });
    const creates = testbed.fake.requests.filter((request) => request.method === 'POST' && request.path.endsWith('/keys'));
    expect(creates).toHaveLength(1);
    expect(testbed.fake.requests.filter((request) => request.method === 'DELETE')).toEqual([]);
    expect(testbed.fake.secretVersions(PROJECT, SECRET)).toEqual([{ number: 1, state: 'ENABLED', value: oldKeyFile }]);
  });

  it('rotates an access token into Secret Manager', async () => {
    await start();
    testbed.fake.grantTokenCreator(account, ADMIN_ACCOUNT);

    const run = await rotate({
      inventory: `
environments:
  ci:
    credentials:
      - id: deployer-token
        kind: gcp-access-token
        params: { serviceAccount: ${account}, lifetimeSeconds: 900 }
        stores:
          - store: gcp-secret-manager
            project: ${PROJECT}
            secret: deployer-token
`,
    });

    expect(run.status).toBe('completed');
    const credential = run.credentials[0]!;
    expect(credential.outcome).toBe('rotated');
    expect(credential.newKeyId).toMatch(/^token-[0-9a-f]{16}$/);
    const stored = JSON.parse(testbed.fake.secretVersions(PROJECT, 'deployer-token')[0]!.value!) as Record<string, string>;
    expect(Object.keys(stored).sort()).toEqual(['accessToken', 'expireTime', 'serviceAccount', 'tokenType']);
    expect(stored.serviceAccount).toBe(account);
    expect(stored.tokenType).toBe('Bearer');
    expect(stored.expireTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/);
    expect(Date.parse(stored.expireTime!)).toBeGreaterThan(Date.now());
    expect(Date.parse(stored.expireTime!)).toBeLessThanOrEqual(Date.now() + 900_000);
    const info = await fetch(`${testbed.fake.url}/tokeninfo`, { method: 'POST', body: new URLSearchParams({ access_token: stored.accessToken! }) });
    expect(info.status).toBe(200);
    expect(((await info.json()) as { scope: string }).scope).toBe('https://www.googleapis.com/auth/cloud-platform');
  });

  it('keeps private keys and tokens out of logs, audit, Redis and responses', async () => {
    await start();
    testbed.fake.grantTokenCreator(account, ADMIN_ACCOUNT);

    const run = await rotate({
      inventory: `${keyInventory(account)}      - id: deployer-token
        kind: gcp-access-token
        params: { serviceAccount: ${account} }
        stores:
          - store: gcp-secret-manager
            project: ${PROJECT}
            secret: deployer-token
`,
    });

    expect(run.status).toBe('completed');
    const newKeyFile = testbed.fake.secretVersions(PROJECT, SECRET)[1]!.value!;
    const token = (JSON.parse(testbed.fake.secretVersions(PROJECT, 'deployer-token')[0]!.value!) as { accessToken: string }).accessToken;
    const canaries = {
      'new private key': privateKeyOf(newKeyFile).split('\n')[5]!,
      'old private key': privateKeyOf(oldKeyFile).split('\n')[5]!,
      'admin private key': privateKeyOf(testbed.adminKeyFile).split('\n')[5]!,
      'access token': token,
    };
    const places = {
      logs: harness.logs.join(''),
      audit: readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8'),
      redis: await redisDump(harness),
      responses: responses.join(''),
    };
    expect(places.logs).toContain('service account key minted');
    for (const [place, text] of Object.entries(places)) {
      for (const [name, value] of Object.entries(canaries)) {
        expect(value.length, name).toBeGreaterThan(20);
        expect(text.includes(value), `${name} in ${place}`).toBe(false);
      }
    }
  });
});
