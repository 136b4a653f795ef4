import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createGcpServiceAccountKeyProvider,
  type GcpServiceAccountKeyProvider,
} from '../../providers/gcp-service-account-key/index.js';
import { RekeyError } from '../../src/errors.js';
import { secretField, type Material } from '../../src/secret.js';
import { verifyWithinPolicy } from '../support/aws.js';
import { ADMIN_ACCOUNT, gcpStepContext, startGcpTestbed, tokenStatus, uniqueServiceAccount, type GcpTestbed } from '../support/gcp.js';

const NO_RECORD = { currentKeyId: null, unpromotedKeyIds: [] };

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error: unknown = await promise.then(() => undefined, (reason: unknown) => reason);
  expect(error).toBeInstanceOf(RekeyError);
  return error as RekeyError;
}

/** Renders material as the key file a store receives. */
function keyFileText(material: Material): string {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(material.fields)) fields[name] = typeof value === 'string' ? value : value.reveal();
  return JSON.stringify(fields);
}

function keyIdOf(keyFile: string): string {
  return (JSON.parse(keyFile) as { private_key_id: string }).private_key_id;
}

describe('gcp-service-account-key provider', () => {
  let testbed: GcpTestbed;
  let provider: GcpServiceAccountKeyProvider;
  let account: string;

  beforeEach(async () => {
    testbed = await startGcpTestbed();
    provider = createGcpServiceAccountKeyProvider({ ...testbed.env, REKEY_GCP_VERIFY_WINDOW_MS: '20000', REKEY_GCP_VERIFY_INTERVAL_MS: '100' });
    account = uniqueServiceAccount();
    testbed.fake.createServiceAccount(account);
  });

  afterEach(async () => {
    await provider?.close();
    await testbed?.close();
  });

  describe('when the account has one key', () => {
    it('rotates the key end to end', async () => {
      const oldKeyFile = testbed.fake.addKey(account);
      const oldKeyId = keyIdOf(oldKeyFile);
      const params = { serviceAccount: account };
      const ctx = gcpStepContext();

      const inspection = await provider.inspect(params, NO_RECORD, ctx);
      expect(inspection).toEqual({ currentKeyId: oldKeyId, orphanKeyIds: [], otherKeyIds: [] });

      const material = await provider.mint(params, ctx);
      expect(testbed.fake.keyStates(account)).toEqual({ [oldKeyId]: 'ENABLED', [material.keyId]: 'ENABLED' });
      expect(material.fields.client_email).toBe(account);
      expect(material.fields.private_key_id).toBe(material.keyId);
      expect(material.fields.type).toBe('service_account');
      expect(secretField(material, 'private_key').reveal()).toMatch(/^-----BEGIN PRIVATE KEY-----/);

      await provider.verify(params, material, ctx);
      await provider.revoke(params, oldKeyId, ctx);

      expect(testbed.fake.keyStates(account)).toEqual({ [material.keyId]: 'ENABLED' });
      expect((await tokenStatus(testbed.fake, keyFileText(material))).status).toBe(200);
      expect(await tokenStatus(testbed.fake, oldKeyFile)).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } });
      expect(await provider.confirm(params, oldKeyId, ctx)).toBe(true);
      expect(await provider.confirm(params, material.keyId, ctx)).toBe(false);
    });

    it('disables the old key before deleting it', async () => {
      const oldKeyId = keyIdOf(testbed.fake.addKey(account));

      await provider.revoke({ serviceAccount: account }, oldKeyId, gcpStepContext());

      const calls = testbed.fake.requests.filter((request) => request.path.includes(oldKeyId)).map((request) => `${request.method} ${request.path.split('/').pop()}`);
      expect(calls).toEqual([`POST ${oldKeyId}:disable`, `DELETE ${oldKeyId}`]);
    });

    it('disable leaves the key listed but unusable', async () => {
      const oldKeyFile = testbed.fake.addKey(account);
      const oldKeyId = keyIdOf(oldKeyFile);

      await provider.disable({ serviceAccount: account }, oldKeyId, gcpStepContext());

      expect(testbed.fake.keyStates(account)).toEqual({ [oldKeyId]: 'DISABLED' });
      expect((await tokenStatus(testbed.fake, oldKeyFile)).status).toBe(400);
    });
  });

  describe('inspect', () => {
    it('counts only user-managed keys', async () => {
      const keyId = keyIdOf(testbed.fake.addKey(account));

      expect(Object.keys(testbed.fake.keyStates(account, 'SYSTEM_MANAGED'))).toHaveLength(1);
      expect(await provider.inspect({ serviceAccount: account }, NO_RECORD, gcpStepContext())).toEqual({ currentKeyId: keyId, orphanKeyIds: [], otherKeyIds: [] });
    });

    it('reports the recorded key as current and the others as further keys', async () => {
      const older = keyIdOf(testbed.fake.addKey(account, 7_200_000));
      const newer = keyIdOf(testbed.fake.addKey(account, 3_600_000));

      const recorded = await provider.inspect({ serviceAccount: account }, { currentKeyId: older, unpromotedKeyIds: [] }, gcpStepContext());
      const unrecorded = await provider.inspect({ serviceAccount: account }, NO_RECORD, gcpStepContext());

      expect(recorded).toEqual({ currentKeyId: older, orphanKeyIds: [], otherKeyIds: [newer] });
      expect(unrecorded).toEqual({ currentKeyId: newer, orphanKeyIds: [], otherKeyIds: [older] });
    });

    it('lists unpromoted keys as orphans', async () => {
      const current = keyIdOf(testbed.fake.addKey(account));
      const orphan = keyIdOf(testbed.fake.addKey(account));

      const inspection = await provider.inspect({ serviceAccount: account }, { currentKeyId: current, unpromotedKeyIds: [orphan] }, gcpStepContext());

      expect(inspection).toEqual({ currentKeyId: current, orphanKeyIds: [orphan], otherKeyIds: [] });
    });

    it('reports KEY_QUOTA at ten keys, naming the account and the limit', async () => {
      const keyIds = Array.from({ length: 10 }, () => keyIdOf(testbed.fake.addKey(account)));

      const error = await rejection(provider.inspect({ serviceAccount: account }, NO_RECORD, gcpStepContext()));

      expect(error.code).toBe('KEY_QUOTA');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain(`service account ${account} already has the maximum of 10 user-managed keys: `);
      for (const keyId of keyIds) expect(error.message).toContain(keyId);
    });

    it('leaves room when an orphan fills the tenth slot', async () => {
      const keyIds = Array.from({ length: 10 }, () => keyIdOf(testbed.fake.addKey(account)));

      const inspection = await provider.inspect({ serviceAccount: account }, { currentKeyId: keyIds[0]!, unpromotedKeyIds: [keyIds[9]!] }, gcpStepContext());

      expect(inspection.orphanKeyIds).toEqual([keyIds[9]]);
      expect(inspection.currentKeyId).toBe(keyIds[0]);
    });

    it('reports a missing account', async () => {
      const error = await rejection(provider.inspect({ serviceAccount: 'missing@rekey-tests.iam.gserviceaccount.com' }, NO_RECORD, gcpStepContext()));

      expect(error.code).toBe('TARGET_NOT_FOUND');
      expect(error.message).toBe('service account missing@rekey-tests.iam.gserviceaccount.com does not exist: check serviceAccount in the inventory');
    });
  });

  describe('mint', () => {
    it('reports the organisation policy as a non-retryable error', async () => {
      testbed.fake.disableKeyCreation = true;

      const error = await rejection(provider.mint({ serviceAccount: account }, gcpStepContext()));

      expect(error.code).toBe('PRECONDITION_FAILED');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain(`an organisation policy (constraints/iam.disableServiceAccountKeyCreation) forbids creating keys for service account ${account}`);
      expect(testbed.fake.keyStates(account)).toEqual({});
    });

    it('maps the key limit to KEY_QUOTA', async () => {
      for (let index = 0; index < 10; index += 1) testbed.fake.addKey(account);

      const error = await rejection(provider.mint({ serviceAccount: account }, gcpStepContext()));

      expect(error.code).toBe('KEY_QUOTA');
      expect(error.message).toBe(`service account ${account} already has the maximum of 10 user-managed keys, so no replacement can be created: Precondition check failed.`);
    });

    it('maps the older 429 key limit to KEY_QUOTA', async () => {
      for (let index = 0; index < 10; index += 1) testbed.fake.addKey(account);
      testbed.fake.injectFault({
        method: 'POST', path: /\/keys$/, status: 429, times: 1,
        body: { error: { code: 429, message: 'Maximum number of keys on account reached.', status: 'RESOURCE_EXHAUSTED' } },
      });

      const error = await rejection(provider.mint({ serviceAccount: account }, gcpStepContext()));

      expect(error.code).toBe('KEY_QUOTA');
    });

    it('maps other 429 responses to THROTTLED', async () => {
      testbed.fake.injectFault({
        method: 'POST', path: /\/keys$/, status: 429, times: 1,
        body: { error: { code: 429, message: "Quota exceeded for quota metric 'Key creation requests'.", status: 'RESOURCE_EXHAUSTED' } },
      });

      const error = await rejection(provider.mint({ serviceAccount: account }, gcpStepContext()));

      expect(error.code).toBe('THROTTLED');
      expect(error.retryable).toBe(true);
      expect(error.message).toBe(`iam.serviceAccountKeys.create on service account ${account} failed: RESOURCE_EXHAUSTED: Quota exceeded for quota metric 'Key creation requests'.`);
    });
  });

  describe('verify', () => {
    it('waits while the new key propagates', async () => {
      testbed.fake.propagationDelayMs = 800;
      const ctx = gcpStepContext();
      const material = await provider.mint({ serviceAccount: account }, ctx);

      const early = await rejection(provider.verify({ serviceAccount: account }, material, ctx));
      const { attempts } = await verifyWithinPolicy(provider, { serviceAccount: account }, material, ctx);

      expect(early.code).toBe('NOT_READY');
      expect(early.message).toContain(`the token endpoint rejects key ${material.keyId} of ${account} yet`);
      expect(attempts).toBeGreaterThan(2);
    });

    it('reports an unavailable IAM as retryable', async () => {
      testbed.fake.propagationDelayMs = 60_000;
      const ctx = gcpStepContext();
      const material = await provider.mint({ serviceAccount: account }, ctx);
      testbed.fake.injectFault({
        method: 'GET', path: new RegExp(`/keys/${material.keyId}$`), status: 503, times: 1,
        body: { error: { code: 503, message: 'The service is currently unavailable.', status: 'UNAVAILABLE' } },
      });

      const error = await rejection(provider.verify({ serviceAccount: account }, material, ctx));

      expect(error.code).toBe('UNAVAILABLE');
      expect(error.retryable).toBe(true);
      expect(error.message).toBe(`iam.serviceAccountKeys.get on key ${material.keyId} of service account ${account} failed: UNAVAILABLE: The service is currently unavailable.`);
    });

    it('reports a busy token endpoint as throttled', async () => {
      const ctx = gcpStepContext();
      const material = await provider.mint({ serviceAccount: account }, ctx);
      testbed.fake.injectFault({ method: 'POST', path: /^\/token$/, status: 429, times: 1, body: { error: 'rate_limit_exceeded', error_description: 'Rate limit exceeded.' } });

      const error = await rejection(provider.verify({ serviceAccount: account }, material, ctx));
      await provider.verify({ serviceAccount: account }, material, ctx);

      expect(error.code).toBe('THROTTLED');
      expect(error.message).toBe(`the token endpoint could not check key ${material.keyId} of ${account}: HTTP 429 rate_limit_exceeded (Rate limit exceeded.)`);
    });

    it('fails a key that is still rejected past the window', async () => {
      const shortWindow = createGcpServiceAccountKeyProvider({ ...testbed.env, REKEY_GCP_VERIFY_WINDOW_MS: '600', REKEY_GCP_VERIFY_INTERVAL_MS: '100' });
      testbed.fake.propagationDelayMs = 60_000;
      const ctx = gcpStepContext();
      const material = await shortWindow.mint({ serviceAccount: account }, ctx);

      const error = await rejection(verifyWithinPolicy(shortWindow, { serviceAccount: account }, material, ctx));
      await shortWindow.close();

      expect(error.code).toBe('VERIFY_FAILED');
      expect(error.message).toContain(`the token endpoint still rejects key ${material.keyId} of ${account}`);
      expect(error.message).toContain('past the verify window of 600 ms: invalid_grant (Invalid JWT Signature.)');
    });

    it('fails a deleted key at once', async () => {
      const ctx = gcpStepContext();
      const material = await provider.mint({ serviceAccount: account }, ctx);
      const privateKey = secretField(material, 'private_key').reveal();
      await provider.discard({ serviceAccount: account }, material.keyId, ctx);

      const error = await rejection(provider.verify({ serviceAccount: account }, material, ctx));

      expect(error.code).toBe('VERIFY_FAILED');
      expect(error.message).toBe(`key ${material.keyId} of ${account} is deleted, so the token endpoint rejects it: invalid_grant (Invalid JWT Signature.)`);
      expect(error.message).not.toContain(privateKey);
    });

    it("never follows a stored key file's token_uri", async () => {
      // Without REKEY_GCP_TOKEN_URL, rekey's own key file names the token endpoint (the fake's).
      const env: Record<string, string> = { ...testbed.env, REKEY_GCP_VERIFY_WINDOW_MS: '20000', REKEY_GCP_VERIFY_INTERVAL_MS: '100' };
      delete env.REKEY_GCP_TOKEN_URL;
      const fromKeyFile = createGcpServiceAccountKeyProvider(env);
      const ctx = gcpStepContext();
      const material = await fromKeyFile.mint({ serviceAccount: account }, ctx);
      const received: string[] = [];
      const elsewhere = createServer((request, response) => {
        received.push(`${request.method} ${request.url}`);
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"forged","expires_in":3600}');
      });
      await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
      try {
        // Anyone with write access to the store could point the key file's token_uri anywhere.
        expect(Object.keys(material.fields)).toContain('token_uri');
        const tampered: Material = { keyId: material.keyId, fields: { ...material.fields, token_uri: `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/token` } };

        await verifyWithinPolicy(fromKeyFile, { serviceAccount: account }, tampered, ctx);
      } finally {
        await fromKeyFile.close();
        await new Promise<void>((resolve) => elsewhere.close(() => resolve()));
      }

      expect(received).toEqual([]);
      expect(testbed.fake.requests.filter((request) => request.path === '/token').length).toBeGreaterThan(0);
    });

    it('rejects a key file of another account', async () => {
      const other = uniqueServiceAccount('other');
      testbed.fake.createServiceAccount(other);
      const material = await provider.mint({ serviceAccount: other }, gcpStepContext());

      const error = await rejection(provider.verify({ serviceAccount: account }, material, gcpStepContext()));

      expect(error.code).toBe('VERIFY_FAILED');
      expect(error.message).toBe(`the key file of key ${material.keyId} belongs to ${other} (key ${material.keyId}), not to service account ${account}`);
    });
  });

  describe('discard and revoke', () => {
    it('succeed for a key that is already gone', async () => {
      const ctx = gcpStepContext();
      await expect(provider.discard({ serviceAccount: account }, 'f'.repeat(40), ctx)).resolves.toBeUndefined();
      await expect(provider.revoke({ serviceAccount: account }, 'e'.repeat(40), ctx)).resolves.toBeUndefined();
      await expect(provider.disable({ serviceAccount: account }, 'd'.repeat(40), ctx)).resolves.toBeUndefined();
    });
  });

  describe("when rekey's own identity fails", () => {
    it('reports a rejected admin key as PERMISSION_DENIED', async () => {
      const adminKeyId = keyIdOf(testbed.adminKeyFile);
      const adminCtx = gcpStepContext();
      await provider.inspect({ serviceAccount: account }, NO_RECORD, adminCtx);
      await provider.revoke({ serviceAccount: ADMIN_ACCOUNT }, adminKeyId, adminCtx);
      const fresh = createGcpServiceAccountKeyProvider(testbed.env);

      const error = await rejection(fresh.inspect({ serviceAccount: account }, NO_RECORD, gcpStepContext()));
      await fresh.close();

      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toBe(
        `the token endpoint ${testbed.fake.tokenUrl} rejected rekey's key ${adminKeyId} of ${ADMIN_ACCOUNT}: invalid_grant (Invalid JWT Signature.). Check REKEY_GCP_CREDENTIALS_FILE`,
      );
    });

    it("uses the key file's token_uri without REKEY_GCP_TOKEN_URL", async () => {
      const env: Record<string, string> = { ...testbed.env };
      delete env.REKEY_GCP_TOKEN_URL;
      const keyId = keyIdOf(testbed.fake.addKey(account));
      const fromKeyFile = createGcpServiceAccountKeyProvider(env);

      const inspection = await fromKeyFile.inspect({ serviceAccount: account }, NO_RECORD, gcpStepContext());
      await fromKeyFile.close();

      expect(inspection.currentKeyId).toBe(keyId);
      expect(testbed.fake.requests.filter((request) => request.path === '/token')).toHaveLength(1);
    });

    it('calls as the rotator when impersonating', async () => {
      const rotator = uniqueServiceAccount('rotator');
      testbed.fake.createServiceAccount(rotator);
      testbed.fake.grantTokenCreator(rotator, ADMIN_ACCOUNT);
      testbed.fake.addKey(account);
      const impersonating = createGcpServiceAccountKeyProvider({ ...testbed.env, REKEY_GCP_IMPERSONATE_SERVICE_ACCOUNT: rotator });

      await impersonating.inspect({ serviceAccount: account }, NO_RECORD, gcpStepContext());
      await impersonating.close();

      const callers = testbed.fake.requests.filter((request) => request.path.endsWith('/keys')).map((request) => request.caller);
      expect(callers).toEqual([rotator]);
      const generate = testbed.fake.requests.filter((request) => request.path.endsWith(':generateAccessToken'));
      expect(generate).toEqual([{ method: 'POST', path: `/v1/projects/-/serviceAccounts/${encodeURIComponent(rotator)}:generateAccessToken`, caller: ADMIN_ACCOUNT }]);
    });

    it('reports a rotator without the Token Creator grant', async () => {
      const rotator = uniqueServiceAccount('rotator');
      testbed.fake.createServiceAccount(rotator);
      const impersonating = createGcpServiceAccountKeyProvider({ ...testbed.env, REKEY_GCP_IMPERSONATE_SERVICE_ACCOUNT: rotator });

      const error = await rejection(impersonating.inspect({ serviceAccount: account }, NO_RECORD, gcpStepContext()));
      await impersonating.close();

      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toContain(`iam.serviceAccounts.getAccessToken on rotator service account ${rotator} was denied`);
    });
  });
});
