import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAzureAppClientSecretProvider } from '../../providers/azure-app-client-secret/index.js';
import { createFileStore } from '../../providers/file-store/index.js';
import { RekeyError } from '../../src/errors.js';
import { SecretValue, type Material } from '../../src/secret.js';
import { FakeAzure } from '../fakes/azure.js';
import { stepContext } from '../support/aws.js';
import { createTestAuthority, requestToken, type TestAuthority } from '../support/azure.js';
import { startHarness, type Harness } from '../support/harness.js';

interface RunView {
  status: string;
  credentials: Array<{
    outcome: string;
    oldKeyId: string | null;
    newKeyId: string | null;
    attempts: number;
    error: { code: string; message: string } | null;
  }>;
}

interface StoredSecret {
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

interface RotateOptions {
  mode?: 'incident' | 'scheduled';
  credentialParams?: string;
  storeParams?: string;
  env?: Record<string, string>;
  atBoundary?: Parameters<typeof startHarness>[0]['atBoundary'];
}

const SECRET_NAME = 'ci-deployer';
const FILE_PATH = 'ci/deployer-azure';

describe('rotating an Entra ID client secret', () => {
  let authority: TestAuthority;
  let fake: FakeAzure;
  let harness: Harness | undefined;
  let app: { id: string; appId: string };
  let oldSecret: { keyId: string; secretText: string };
  /** Every API response body of the last rotation, for the canary checks. */
  let responses: string[];

  function azureEnv(): Record<string, string> {
    return {
      REKEY_AZURE_AUTHORITY_HOST: fake.url,
      REKEY_AZURE_GRAPH_ENDPOINT: fake.url,
      REKEY_AZURE_GRAPH_SCOPE: 'https://graph.microsoft.com/.default',
      REKEY_AZURE_TENANT_ID: fake.tenantId,
      REKEY_AZURE_CLIENT_ID: fake.admin.clientId,
      REKEY_AZURE_CLIENT_SECRET: fake.admin.secret,
      REKEY_AZURE_CA_FILE: authority.caFile,
      REKEY_AZURE_KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      REKEY_AZURE_VERIFY_WINDOW_MS: '20000',
      REKEY_AZURE_VERIFY_INTERVAL_MS: '250',
    };
  }

  function inventory(options: RotateOptions): string {
    return `
environments:
  ci:
    credentials:
      - id: deployer-azure
        kind: azure-app-client-secret
        params: { appId: ${app.appId}${options.credentialParams ?? ''} }
        stores:
          - store: azure-key-vault
            vaultUrl: ${fake.url}
            name: ${SECRET_NAME}${options.storeParams ?? ''}
          - store: file
            path: ${FILE_PATH}
`;
  }

  async function rotate(options: RotateOptions = {}): Promise<RunView> {
    harness = await startHarness({ inventory: inventory(options), env: { ...azureEnv(), ...options.env }, atBoundary: options.atBoundary });
    const started = await harness.app.inject({
      method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth, payload: { reason: 'azure test', mode: options.mode ?? 'incident' },
    });
    responses = [started.body];
    const { runId } = started.json() as { runId: string };
    await harness.waitForRun(runId, 90_000);
    const status = await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth });
    const environments = await harness.app.inject({ method: 'GET', url: '/v1/environments/ci', headers: harness.auth });
    responses.push(status.body, environments.body);
    return status.json() as RunView;
  }

  function consumerValue(): StoredSecret {
    return JSON.parse(fake.readSecret(SECRET_NAME) ?? '{}') as StoredSecret;
  }

  async function fileValue(): Promise<StoredSecret | null> {
    const value = await createFileStore(harness!.env).readCurrentValue(FILE_PATH);
    return value === null ? null : (JSON.parse(value.reveal()) as StoredSecret);
  }

  function token(secret: string): ReturnType<typeof requestToken> {
    return requestToken(fake.url, fake.tenantId, authority.caFile, app.appId, secret);
  }

  function graphCalls(route: string): Array<{ status: number; created?: boolean }> {
    return fake.requests.filter((request) => request.route === route).map(({ status, created }) => (created === undefined ? { status } : { status, created }));
  }

  function auditRecords(): Array<Record<string, unknown>> {
    return readFileSync(harness!.env.REKEY_AUDIT_FILE!, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  beforeAll(() => {
    authority = createTestAuthority();
  });

  afterAll(() => {
    authority?.remove();
  });

  beforeEach(async () => {
    fake = await FakeAzure.start({ tls: { key: authority.serverKey, cert: authority.serverCert } });
    app = fake.createApplication({ displayName: 'ci-deployer' });
    oldSecret = fake.addSecret(app.appId, 'first secret');
    fake.writeSecret(SECRET_NAME, JSON.stringify({ tenantId: fake.tenantId, clientId: app.appId, clientSecret: oldSecret.secretText }));
  });

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    await fake?.close();
  });

  describe('when the new secret works', () => {
    it('replaces the secret in Key Vault and the file store', async () => {
      const run = await rotate();

      expect(run.status).toBe('completed');
      const credential = run.credentials[0]!;
      expect(credential.outcome).toBe('rotated');
      expect(credential.oldKeyId).toBe(oldSecret.keyId);
      const newKeyId = credential.newKeyId!;
      expect(fake.passwordCredentials(app.appId).map((password) => password.keyId)).toEqual([newKeyId]);

      const stored = consumerValue();
      expect(stored.tenantId).toBe(fake.tenantId);
      expect(stored.clientId).toBe(app.appId);
      expect(stored.clientSecret).not.toBe(oldSecret.secretText);
      expect(await fileValue()).toEqual(stored);
    });

    it('makes the token endpoint accept only the new secret', async () => {
      await rotate();

      expect(await token(consumerValue().clientSecret)).toEqual({ status: 200, aadsts: null });
      expect(await token(oldSecret.secretText)).toEqual({ status: 401, aadsts: 7000215 });
    });

    it('names the minted secret after the rotation', async () => {
      await rotate();

      const [password] = fake.passwordCredentials(app.appId);
      expect(password?.displayName).toMatch(/^rekey:[0-9a-f-]{36}$/);
      expect(graphCalls('addPassword')).toEqual([{ status: 200, created: true }]);
      expect(graphCalls('removePassword')).toEqual([{ status: 204 }]);
    });

    it('disables the replaced Key Vault version once the old secret is revoked', async () => {
      const run = await rotate();

      const versions = fake.secretVersions(SECRET_NAME);
      expect(versions.map((version) => version.enabled)).toEqual([false, true]);
      expect(versions[1]!.tags).toEqual({
        'rekey-rotation-id': expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown as string,
        'rekey-key-id': run.credentials[0]!.newKeyId!,
        'rekey-previous-version': versions[0]!.version,
      });
      expect(fake.secretVersions(`${SECRET_NAME}-rekey-pending`).map((version) => version.enabled)).toEqual([false]);
    });

    it('disables the replaced version when its grace is zero', async () => {
      const run = await rotate({ storeParams: '\n            disablePreviousAfter: "0"' });

      expect(run.status).toBe('completed');
      expect(fake.secretVersions(SECRET_NAME).map((version) => version.enabled)).toEqual([false, true]);
      expect(consumerValue().clientSecret).not.toBe(oldSecret.secretText);
    });

    it('keeps the old secret until the scheduled revoke', async () => {
      const run = await rotate({ mode: 'scheduled' });

      expect(run.status).toBe('completed');
      expect(run.credentials[0]!.outcome).toBe('revocation-scheduled');
      expect(fake.passwordCredentials(app.appId).map((password) => password.keyId)).toEqual([oldSecret.keyId, run.credentials[0]!.newKeyId]);
      expect(await token(oldSecret.secretText)).toEqual({ status: 200, aadsts: null });
      // The old secret still works during the grace period, so its Key Vault version stays enabled.
      expect(fake.secretVersions(SECRET_NAME).map((version) => version.enabled)).toEqual([true, true]);
    });
  });

  describe('when the new secret propagates slowly', () => {
    it('waits until the token endpoint accepts it', async () => {
      fake.propagationDelayMs = 2_000;

      const run = await rotate();

      expect(run.status).toBe('completed');
      expect(graphCalls('token').filter((call) => call.status === 401).length).toBeGreaterThan(0);
      const verified = harness!.logs.join('').split('\n').filter((line) => line.includes('"new credential verified"'));
      expect(verified).toHaveLength(1);
      expect((JSON.parse(verified[0]!) as { attempts: number }).attempts).toBeGreaterThan(2);
      expect(await token(consumerValue().clientSecret)).toEqual({ status: 200, aadsts: null });
    });

    it('removes a secret still rejected past the verify window', async () => {
      fake.propagationDelayMs = 600_000;

      const run = await rotate({ env: { REKEY_AZURE_VERIFY_WINDOW_MS: '1500' } });

      expect(run.status).toBe('failed');
      const error = run.credentials[0]!.error!;
      expect(error.code).toBe('VERIFY_FAILED');
      expect(error.message).toContain('past the verify window of 1500 ms');
      expect(error.message).toContain(`: AuthenticationRequiredError: AADSTS7000215: Invalid client secret provided.`);
      expect(fake.passwordCredentials(app.appId).map((password) => password.keyId)).toEqual([oldSecret.keyId]);
      expect(consumerValue().clientSecret).toBe(oldSecret.secretText);
      expect(fake.secretVersions(SECRET_NAME)).toHaveLength(1);
      expect(fake.secretVersions(`${SECRET_NAME}-rekey-pending`).map((version) => version.enabled)).toEqual([false]);
      expect(await token(oldSecret.secretText)).toEqual({ status: 200, aadsts: null });

      // The rejected secret travelled through verify's error path: it must not surface anywhere.
      const rejected = (JSON.parse(fake.secretVersions(`${SECRET_NAME}-rekey-pending`)[0]!.value) as StoredSecret).clientSecret;
      const places = { logs: harness!.logs.join(''), audit: readFileSync(harness!.env.REKEY_AUDIT_FILE!, 'utf8'), responses: responses.join('\n') };
      for (const [place, text] of Object.entries(places)) expect(text.includes(rejected), place).toBe(false);
    });
  });

  describe('when the application is at its secret limit', () => {
    it('stops before minting for an application of personal accounts', async () => {
      app = fake.createApplication({ displayName: 'consumer-app', signInAudience: 'AzureADandPersonalMicrosoftAccount' });
      oldSecret = fake.addSecret(app.appId, 'first secret');
      const byHand = fake.addSecret(app.appId, 'added by hand');
      fake.secretLimit = 2;

      const run = await rotate();

      expect(run.status).toBe('failed');
      const error = run.credentials[0]!.error!;
      expect(error.code).toBe('KEY_QUOTA');
      expect(error.message).toContain(`application "consumer-app" (appId ${app.appId}) already has 2 client secrets`);
      expect(error.message).toContain('the limit for signInAudience AzureADandPersonalMicrosoftAccount is 2');
      expect(graphCalls('addPassword')).toEqual([]);
      expect(graphCalls('removePassword')).toEqual([]);
      expect(fake.passwordCredentials(app.appId).map((password) => password.keyId)).toEqual([oldSecret.keyId, byHand.keyId]);
    });

    it('stops before minting at the inventory limit', async () => {
      fake.addSecret(app.appId, 'added by hand');

      const run = await rotate({ credentialParams: ', maxSecrets: 2' });

      const error = run.credentials[0]!.error!;
      expect(error.code).toBe('KEY_QUOTA');
      expect(error.message).toContain(`application "ci-deployer" (appId ${app.appId}) already has 2 client secrets, and maxSecrets in the inventory is 2`);
      expect(graphCalls('addPassword')).toEqual([]);
      expect(fake.passwordCredentials(app.appId)).toHaveLength(2);
    });

    it('reports the limit Graph enforces', async () => {
      fake.secretLimit = 1;

      const run = await rotate();

      expect(run.status).toBe('failed');
      const error = run.credentials[0]!.error!;
      expect(error.code).toBe('KEY_QUOTA');
      expect(error.message).toContain(`application ${app.appId} holds as many client secrets as Entra ID allows (a maximum of 1)`);
      expect(error.message).toContain('TooManyAppPasswords');
      expect(graphCalls('addPassword')).toEqual([{ status: 400 }]);
      expect(graphCalls('removePassword')).toEqual([]);
      expect(fake.passwordCredentials(app.appId).map((password) => password.keyId)).toEqual([oldSecret.keyId]);
    });
  });

  describe('when Graph misbehaves', () => {
    it('waits out a 429 and mints once', async () => {
      fake.throttle('addPassword', 1, 1);

      const run = await rotate();

      expect(run.status).toBe('completed');
      expect(graphCalls('addPassword')).toEqual([{ status: 429 }, { status: 200, created: true }]);
      const waits = harness!.logs.join('').split('\n').filter((line) => line.includes('Graph throttled the request'));
      expect(waits).toHaveLength(1);
      expect((JSON.parse(waits[0]!) as { retryAfterMs: number }).retryAfterMs).toBe(1000);
      expect(fake.passwordCredentials(app.appId).map((password) => password.keyId)).toEqual([run.credentials[0]!.newKeyId]);
    });

    it('removes a secret whose addPassword answer was lost', async () => {
      fake.failAfterCreate(1);

      const run = await rotate();

      expect(run.status).toBe('completed');
      expect(graphCalls('addPassword')).toEqual([{ status: 503, created: true }, { status: 200, created: true }]);
      // The lost secret and then the old one are removed; only the verified replacement remains.
      expect(graphCalls('removePassword')).toEqual([{ status: 204 }, { status: 204 }]);
      expect(fake.passwordCredentials(app.appId).map((password) => password.keyId)).toEqual([run.credentials[0]!.newKeyId]);
      expect(run.credentials[0]!.attempts).toBe(2);
      expect(auditRecords().filter((record) => record.step === 'mint' && record.outcome === 'succeeded')).toHaveLength(1);
    });
  });

  describe('when the worker stops between steps', () => {
    /** Fails the job once at `point` with a retryable error, as a worker that died there. */
    function crashOnceAt(point: string): RotateOptions['atBoundary'] {
      let crashed = false;
      return (reached) => {
        if (reached !== point || crashed) return;
        crashed = true;
        throw new RekeyError('UNAVAILABLE', `simulated worker crash after ${point}`);
      };
    }

    it('removes a secret lost before staging and mints again', async () => {
      const run = await rotate({ atBoundary: crashOnceAt('minted') });

      expect(run.status).toBe('completed');
      expect(graphCalls('addPassword')).toEqual([{ status: 200, created: true }, { status: 200, created: true }]);
      expect(fake.passwordCredentials(app.appId).map((password) => password.keyId)).toEqual([run.credentials[0]!.newKeyId]);
      const discards = auditRecords().filter((record) => record.step === 'discard' && record.outcome === 'succeeded');
      expect(discards.map((record) => (record.detail as Record<string, unknown>).reason)).toEqual(['lost before staging']);
    });

    it('resumes from the value staged in Key Vault', async () => {
      const run = await rotate({ atBoundary: crashOnceAt('staged') });

      expect(run.status).toBe('completed');
      expect(graphCalls('addPassword')).toEqual([{ status: 200, created: true }]);
      const recovered = auditRecords().filter((record) => record.outcome === 'resumed' && record.detail !== undefined);
      expect(recovered.map((record) => [record.step, (record.detail as Record<string, unknown>).recoveredFrom])).toEqual([['stage', 'azure-key-vault']]);
      expect(await token(consumerValue().clientSecret)).toEqual({ status: 200, aadsts: null });
      expect(await fileValue()).toEqual(consumerValue());
    });
  });

  describe('when rekey\'s identity calls Graph', () => {
    const NO_RECORD = { currentKeyId: null, unpromotedKeyIds: [] };
    const folders: string[] = [];

    function tempFolder(): string {
      const folder = mkdtempSync(join(tmpdir(), 'rekey-azure-wi-'));
      folders.push(folder);
      return folder;
    }

    afterEach(() => {
      for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
    });

    async function inspectError(env: Record<string, string>, appId: string): Promise<RekeyError> {
      const provider = createAzureAppClientSecretProvider(env);
      try {
        await provider.inspect({ appId }, NO_RECORD, stepContext());
      } catch (error) {
        if (error instanceof RekeyError) return error;
        throw error;
      }
      throw new Error('expected inspect to fail');
    }

    it('rejects a stored secret of another application', async () => {
      const other = fake.createApplication({ displayName: 'someone-else' });
      const otherSecret = fake.addSecret(other.appId, 'other secret');
      const provider = createAzureAppClientSecretProvider(azureEnv());
      const swapped: Material = {
        keyId: otherSecret.keyId,
        fields: { tenantId: fake.tenantId, clientId: other.appId, clientSecret: SecretValue.fromString(otherSecret.secretText) },
      };

      const error = await provider.verify({ appId: app.appId }, swapped, stepContext()).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(RekeyError);
      expect((error as RekeyError).code).toBe('VERIFY_FAILED');
      expect((error as RekeyError).message).toBe(`client secret ${otherSecret.keyId} is stored for another tenant or application than ${app.appId} in tenant ${fake.tenantId}`);
    });

    it('reports an application rekey does not own', async () => {
      const foreign = fake.createApplication({ displayName: 'foreign', owned: false });

      const error = await inspectError(azureEnv(), foreign.appId);

      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toBe(
        `Graph get application ${foreign.appId} failed: HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation. ` +
          "Grant rekey's identity the Graph application permission Application.ReadWrite.OwnedBy and add it as an owner of the application",
      );
    });

    it('reports a rejected admin secret without quoting it', async () => {
      const error = await inspectError({ ...azureEnv(), REKEY_AZURE_CLIENT_SECRET: 'wrong-admin-secret' }, app.appId);

      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toBe(
        `rekey's Azure identity could not get a token for https://graph.microsoft.com/.default from ${fake.url}: ` +
          'AuthenticationRequiredError: AADSTS7000215: Invalid client secret provided.',
      );
    });

    it('signs in with workload identity', async () => {
      const tokenFile = join(tempFolder(), 'azure-identity-token');
      writeFileSync(tokenFile, fake.addFederatedAssertion(fake.admin.clientId));
      const provider = createAzureAppClientSecretProvider({
        REKEY_AZURE_AUTHORITY_HOST: fake.url,
        REKEY_AZURE_GRAPH_ENDPOINT: fake.url,
        REKEY_AZURE_GRAPH_SCOPE: 'https://graph.microsoft.com/.default',
        REKEY_AZURE_CA_FILE: authority.caFile,
        AZURE_TENANT_ID: fake.tenantId,
        AZURE_CLIENT_ID: fake.admin.clientId,
        AZURE_FEDERATED_TOKEN_FILE: tokenFile,
      });

      const inspection = await provider.inspect({ appId: app.appId, tenantId: fake.tenantId }, NO_RECORD, stepContext());

      expect(inspection).toEqual({ currentKeyId: oldSecret.keyId, orphanKeyIds: [], otherKeyIds: [] });
      const tokenRequests = fake.requests.filter((request) => request.route === 'token');
      expect(tokenRequests.map((request) => request.status)).toEqual([200]);
    });

    it('reports an unknown application', async () => {
      const error = await inspectError(azureEnv(), '00000000-0000-0000-0000-000000000001');

      expect(error.code).toBe('TARGET_NOT_FOUND');
      expect(error.message).toBe("application 00000000-0000-0000-0000-000000000001 not found in Graph: check appId in the inventory, and that rekey's identity owns the application");
    });
  });

  describe('when secrets pass through a rotation', () => {
    it('keeps every client secret out of logs, audit, Redis and responses', async () => {
      const run = await rotate();
      expect(run.status).toBe('completed');

      const canaries = { new: consumerValue().clientSecret, old: oldSecret.secretText, admin: fake.admin.secret };
      expect(canaries.new).toHaveLength(40);
      const redis = harness!.runtime.redis;
      let redisDump = '';
      for (const key of await redis.keys(`${harness!.env.REKEY_REDIS_PREFIX}:*`)) {
        const type = await redis.type(key);
        if (type === 'string') redisDump += await redis.get(key);
        else if (type === 'hash') redisDump += JSON.stringify(await redis.hgetall(key));
        else if (type === 'list') redisDump += (await redis.lrange(key, 0, -1)).join('\n');
        else if (type === 'zset') redisDump += (await redis.zrange(key, 0, -1)).join('\n');
        else if (type === 'stream') redisDump += JSON.stringify(await redis.xrange(key, '-', '+'));
      }
      const places = {
        logs: harness!.logs.join(''),
        audit: readFileSync(harness!.env.REKEY_AUDIT_FILE!, 'utf8'),
        redis: redisDump,
        responses: responses.join('\n'),
      };
      expect(places.responses).toContain(run.credentials[0]!.newKeyId);
      expect(places.redis).toContain(run.credentials[0]!.newKeyId);
      for (const [place, text] of Object.entries(places)) {
        for (const [name, canary] of Object.entries(canaries)) expect(text.includes(canary), `${name} secret in ${place}`).toBe(false);
      }
    });
  });
});
