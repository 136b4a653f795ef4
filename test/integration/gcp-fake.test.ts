import { generateKeyPairSync } from 'node:crypto';
import { SignJWT, importPKCS8 } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGcpSecretManagerStore } from '../../providers/gcp-secret-manager/index.js';
import { createGcpServiceAccountKeyProvider } from '../../providers/gcp-service-account-key/index.js';
import { SecretValue } from '../../src/secret.js';
import { FakeGcp } from '../fakes/gcp.js';
import { gcpStepContext, startGcpTestbed, tokenStatus, uniqueServiceAccount, type GcpTestbed } from '../support/gcp.js';
import { selfSignedCertificate, type TestCertificate } from '../support/vault.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

interface KeyFile {
  private_key_id: string;
  private_key: string;
  client_email: string;
}

/** Signs an assertion for `keyFile` with `privateKeyPem`, overriding claims as a test needs. */
async function assertion(keyFile: KeyFile, audience: string, privateKeyPem = keyFile.private_key, lifetimeSeconds = 3600): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: 'https://www.googleapis.com/auth/cloud-platform' })
    .setProtectedHeader({ alg: 'RS256', kid: keyFile.private_key_id })
    .setIssuer(keyFile.client_email)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetimeSeconds)
    .sign(await importPKCS8(privateKeyPem, 'RS256'));
}

async function postToken(fake: FakeGcp, form: Record<string, string>): Promise<{ status: number; body: unknown }> {
  const response = await fetch(fake.tokenUrl, { method: 'POST', body: new URLSearchParams(form) });
  return { status: response.status, body: await response.json() };
}

describe('fake GCP', () => {
  let testbed: GcpTestbed;
  let account: string;
  let keyFile: KeyFile;

  beforeEach(async () => {
    testbed = await startGcpTestbed();
    account = uniqueServiceAccount();
    testbed.fake.createServiceAccount(account);
    keyFile = JSON.parse(testbed.fake.addKey(account)) as KeyFile;
  });

  afterEach(async () => {
    await testbed?.close();
  });

  describe('token endpoint', () => {
    it('issues a token for a valid assertion', async () => {
      const { status, body } = await postToken(testbed.fake, { grant_type: JWT_BEARER, assertion: await assertion(keyFile, testbed.fake.tokenUrl) });

      expect(status).toBe(200);
      expect(body).toMatchObject({ expires_in: 3599, token_type: 'Bearer' });
      expect((body as { access_token: string }).access_token).toMatch(/^ya29\./);
    });

    it('rejects a signature by another private key', async () => {
      const forger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

      const response = await postToken(testbed.fake, { grant_type: JWT_BEARER, assertion: await assertion(keyFile, testbed.fake.tokenUrl, forger) });

      expect(response).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } });
    });

    it('rejects another audience', async () => {
      const response = await postToken(testbed.fake, { grant_type: JWT_BEARER, assertion: await assertion(keyFile, 'https://example.test/token') });

      expect(response).toEqual({
        status: 400,
        body: { error: 'invalid_grant', error_description: 'Invalid JWT: Failed audience check. The right audience is https://oauth2.googleapis.com/token' },
      });
    });

    it('rejects an assertion valid for over an hour', async () => {
      const response = await postToken(testbed.fake, { grant_type: JWT_BEARER, assertion: await assertion(keyFile, testbed.fake.tokenUrl, keyFile.private_key, 7200) });

      expect(response.status).toBe(400);
      expect((response.body as { error: string }).error).toBe('invalid_grant');
    });

    it('rejects another grant type', async () => {
      const response = await postToken(testbed.fake, { grant_type: 'client_credentials' });

      expect(response).toEqual({ status: 400, body: { error: 'unsupported_grant_type', error_description: 'Invalid grant_type: client_credentials' } });
    });

    it('rejects a new key until it has propagated', async () => {
      testbed.fake.propagationDelayMs = 60_000;
      const fresh = testbed.fake.addKey(account, 0);

      expect((await tokenStatus(testbed.fake, fresh)).status).toBe(400);
      testbed.fake.propagationDelayMs = 0;
      expect((await tokenStatus(testbed.fake, fresh)).status).toBe(200);
    });
  });

  describe('APIs', () => {
    it('reject a request without a token', async () => {
      const response = await fetch(`${testbed.fake.url}/v1/projects/-/serviceAccounts/${account}/keys`);

      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { status: string } }).error.status).toBe('UNAUTHENTICATED');
    });

    it('resolve latest to a disabled newest version', async () => {
      testbed.fake.createSecret('rekey-tests', 'app', ['one', 'two']);
      const token = testbed.fake.issueToken(account);
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      await fetch(`${testbed.fake.url}/v1/projects/rekey-tests/secrets/app/versions/2:disable`, { method: 'POST', headers, body: '{}' });

      const response = await fetch(`${testbed.fake.url}/v1/projects/rekey-tests/secrets/app/versions/latest:access`, { headers });

      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        error: { code: 400, message: 'Secret Version [projects/123456789012/secrets/app/versions/2] is in DISABLED state.', status: 'FAILED_PRECONDITION' },
      });
    });
  });
});

describe('GCP clients over HTTPS', () => {
  let certificate: TestCertificate;
  let testbed: GcpTestbed;

  beforeEach(async () => {
    certificate = selfSignedCertificate();
    testbed = await startGcpTestbed({ tls: { key: certificate.key, cert: certificate.cert } });
  });

  afterEach(async () => {
    await testbed?.close();
    certificate?.remove();
  });

  it('rotate a key and write a secret with REKEY_GCP_CA_FILE', async () => {
    const account = uniqueServiceAccount();
    testbed.fake.createServiceAccount(account);
    const provider = createGcpServiceAccountKeyProvider(testbed.env);
    const store = createGcpSecretManagerStore(testbed.env);
    const ctx = gcpStepContext();

    try {
      const material = await provider.mint({ serviceAccount: account }, ctx);
      await provider.verify({ serviceAccount: account }, material, ctx);
      await store.stage({ project: 'rekey-tests', secret: 'tls' }, { rotationId: ctx.rotationId, keyId: material.keyId, value: SecretValue.fromString('{"tls":true}') }, ctx);
      await store.promote({ project: 'rekey-tests', secret: 'tls' }, ctx.rotationId, ctx);

      expect(testbed.fake.url).toMatch(/^https:/);
      expect(testbed.fake.keyStates(account)).toEqual({ [material.keyId]: 'ENABLED' });
      expect(testbed.fake.secretVersions('rekey-tests', 'tls')).toEqual([{ number: 1, state: 'ENABLED', value: '{"tls":true}' }]);
    } finally {
      await provider.close();
      await store.close();
    }
  });

  it('reject the server without the CA file', async () => {
    const env = { ...testbed.env };
    delete env.REKEY_GCP_CA_FILE;
    const provider = createGcpServiceAccountKeyProvider(env);

    const error: unknown = await provider.inspect({ serviceAccount: 'none@rekey-tests.iam.gserviceaccount.com' }, { currentKeyId: null, unpromotedKeyIds: [] }, gcpStepContext()).catch((reason: unknown) => reason);
    await provider.close();

    expect((error as { code: string }).code).toBe('PRECONDITION_FAILED');
    expect((error as Error).message).toMatch(/^TLS verification failed for the token request on token endpoint https:\/\/127\.0\.0\.1:\d+\/token: /);
    expect((error as Error).message).toMatch(/Set REKEY_GCP_CA_FILE to the CA certificate file that signed the endpoint's certificate$/);
  });
});
