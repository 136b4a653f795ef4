import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeAzure, GRAPH_AUDIENCE, KEY_VAULT_AUDIENCE } from '../fakes/azure.js';
import { createTestAuthority, rawRequest, type RawResponse, type TestAuthority } from '../support/azure.js';

describe('Azure fake', () => {
  let authority: TestAuthority;
  let fake: FakeAzure;

  function send(path: string, options: Parameters<typeof rawRequest>[2] = {}): Promise<RawResponse> {
    return rawRequest(`${fake.url}${path}`, authority.caFile, options);
  }

  function tokenRequest(clientId: string, secret: string, audience: string, tenant: string = fake.tenantId): Promise<RawResponse> {
    return send(`/${tenant}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, scope: `${audience}/.default` }).toString(),
    });
  }

  async function adminToken(audience: string): Promise<string> {
    const response = await tokenRequest(fake.admin.clientId, fake.admin.secret, audience);
    return (response.body as { access_token: string }).access_token;
  }

  beforeAll(() => {
    authority = createTestAuthority();
  });

  afterAll(() => {
    authority?.remove();
  });

  beforeEach(async () => {
    fake = await FakeAzure.start({ tls: { key: authority.serverKey, cert: authority.serverCert } });
  });

  afterEach(async () => {
    await fake?.close();
  });

  describe('Entra ID', () => {
    it('publishes the tenant token endpoint', async () => {
      const response = await send(`/${fake.tenantId}/v2.0/.well-known/openid-configuration`);

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        token_endpoint: `${fake.url}/${fake.tenantId}/oauth2/v2.0/token`,
        issuer: `${fake.url}/${fake.tenantId}/v2.0`,
        authorization_endpoint: `${fake.url}/${fake.tenantId}/oauth2/v2.0/authorize`,
      });
    });

    it('issues a bearer token for a valid secret', async () => {
      const response = await tokenRequest(fake.admin.clientId, fake.admin.secret, GRAPH_AUDIENCE);

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599 });
      expect((response.body as { access_token: string }).access_token).toMatch(/^[\w-]{43}$/);
    });

    it('rejects a wrong secret with AADSTS7000215', async () => {
      const response = await tokenRequest(fake.admin.clientId, 'wrong', GRAPH_AUDIENCE);
      const body = response.body as { error: string; error_codes: number[]; error_description: string };

      expect(response.status).toBe(401);
      expect(body.error).toBe('invalid_client');
      expect(body.error_codes).toEqual([7000215]);
      expect(body.error_description).toMatch(/^AADSTS7000215: Invalid client secret provided\./);
    });

    it('rejects a new secret while it propagates', async () => {
      fake.propagationDelayMs = 600_000;
      const app = fake.createApplication({ displayName: 'app' });
      const graph = await adminToken(GRAPH_AUDIENCE);
      const added = await send(`/v1.0/applications/${app.id}/addPassword`, {
        method: 'POST', headers: { authorization: `Bearer ${graph}`, 'content-type': 'application/json' }, body: '{"passwordCredential":{"displayName":"new"}}',
      });

      const response = await tokenRequest(app.appId, (added.body as { secretText: string }).secretText, GRAPH_AUDIENCE);

      expect(response.status).toBe(401);
      expect((response.body as { error_codes: number[] }).error_codes).toEqual([7000215]);
    });

    it('rejects an unknown tenant with AADSTS90002', async () => {
      const response = await tokenRequest(fake.admin.clientId, fake.admin.secret, GRAPH_AUDIENCE, 'contoso.example');

      expect(response.status).toBe(400);
      expect((response.body as { error_codes: number[] }).error_codes).toEqual([90002]);
    });
  });

  describe('Graph', () => {
    it('returns a Graph error body without a token', async () => {
      const app = fake.createApplication({ displayName: 'app' });

      const response = await send(`/v1.0/applications/${app.id}`);

      expect(response.status).toBe(401);
      const error = (response.body as { error: { code: string; message: string; innerError: Record<string, string> } }).error;
      expect(error.code).toBe('InvalidAuthenticationToken');
      expect(Object.keys(error.innerError)).toEqual(['date', 'request-id', 'client-request-id']);
    });

    it('returns secretText only from addPassword', async () => {
      const app = fake.createApplication({ displayName: 'app' });
      const headers = { authorization: `Bearer ${await adminToken(GRAPH_AUDIENCE)}`, 'content-type': 'application/json' };

      const added = await send(`/v1.0/applications(appId='${app.appId}')/addPassword`, { method: 'POST', headers, body: '{"passwordCredential":{"displayName":"ci"}}' });
      const listed = await send(`/v1.0/applications/${app.id}?$select=passwordCredentials`, { headers });

      expect(added.status).toBe(200);
      const created = added.body as { keyId: string; secretText: string; hint: string; displayName: string };
      expect(created.secretText).toHaveLength(40);
      expect(created.hint).toBe(created.secretText.slice(0, 3));
      expect(created.displayName).toBe('ci');
      const credentials = (listed.body as { passwordCredentials: Array<Record<string, unknown>> }).passwordCredentials;
      expect(credentials).toEqual([expect.objectContaining({ keyId: created.keyId, secretText: null, hint: created.hint })]);
      expect(Object.keys(listed.body as object)).toEqual(['@odata.context', 'passwordCredentials']);
    });

    it('removes a secret with 204', async () => {
      const app = fake.createApplication({ displayName: 'app' });
      const secret = fake.addSecret(app.appId);
      const headers = { authorization: `Bearer ${await adminToken(GRAPH_AUDIENCE)}`, 'content-type': 'application/json' };

      const removed = await send(`/v1.0/applications/${app.id}/removePassword`, { method: 'POST', headers, body: JSON.stringify({ keyId: secret.keyId }) });

      expect(removed.status).toBe(204);
      expect(removed.body).toBeNull();
      expect(fake.passwordCredentials(app.appId)).toEqual([]);
    });

    it('throttles with Retry-After on request', async () => {
      const app = fake.createApplication({ displayName: 'app' });
      fake.throttle('getApplication', 1, 7);
      const headers = { authorization: `Bearer ${await adminToken(GRAPH_AUDIENCE)}` };

      const throttled = await send(`/v1.0/applications/${app.id}`, { headers });
      const next = await send(`/v1.0/applications/${app.id}`, { headers });

      expect(throttled.status).toBe(429);
      expect(throttled.headers['retry-after']).toBe('7');
      expect((throttled.body as { error: { code: string } }).error.code).toBe('TooManyRequests');
      expect(next.status).toBe(200);
    });

    it('denies an application the caller does not own', async () => {
      const app = fake.createApplication({ displayName: 'app', owned: false });

      const response = await send(`/v1.0/applications/${app.id}`, { headers: { authorization: `Bearer ${await adminToken(GRAPH_AUDIENCE)}` } });

      expect(response.status).toBe(403);
      expect((response.body as { error: { code: string } }).error.code).toBe('Authorization_RequestDenied');
    });

    it('rejects a token for another audience', async () => {
      const app = fake.createApplication({ displayName: 'app' });

      const response = await send(`/v1.0/applications/${app.id}`, { headers: { authorization: `Bearer ${await adminToken(KEY_VAULT_AUDIENCE)}` } });

      expect(response.status).toBe(401);
    });
  });

  describe('Key Vault', () => {
    it('challenges a request without a token', async () => {
      const response = await send('/secrets/app?api-version=7.6');

      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toBe(`Bearer authorization="${fake.url}/${fake.tenantId}", resource="https://vault.azure.net"`);
    });

    it('requires the api-version parameter', async () => {
      const response = await send('/secrets/app', { headers: { authorization: `Bearer ${await adminToken(KEY_VAULT_AUDIENCE)}` } });

      expect(response.status).toBe(400);
      expect((response.body as { error: { code: string } }).error.code).toBe('BadParameter');
    });

    it('forbids reading a disabled version', async () => {
      const version = fake.writeSecret('app', 'value');
      fake.disableSecretVersion('app', version);

      const response = await send(`/secrets/app/${version}?api-version=7.6`, { headers: { authorization: `Bearer ${await adminToken(KEY_VAULT_AUDIENCE)}` } });

      expect(response.status).toBe(403);
      expect(response.body).toEqual({ error: { code: 'Forbidden', message: 'Operation get is not allowed on a disabled secret.', innererror: { code: 'SecretDisabled' } } });
    });

    it('pages the versions list', async () => {
      for (let index = 0; index < 3; index += 1) fake.writeSecret('app', `value-${index}`);
      const headers = { authorization: `Bearer ${await adminToken(KEY_VAULT_AUDIENCE)}` };

      const first = await send('/secrets/app/versions?api-version=7.6&maxresults=2', { headers });
      const nextLink = (first.body as { nextLink: string }).nextLink;
      const second = await rawRequest(nextLink, authority.caFile, { headers });

      expect((first.body as { value: unknown[] }).value).toHaveLength(2);
      expect((second.body as { value: unknown[]; nextLink: string | null })).toMatchObject({ nextLink: null });
      expect((second.body as { value: Array<{ value?: string }> }).value.map((item) => item.value)).toEqual([undefined]);
    });
  });
});
