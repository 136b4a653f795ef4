import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { createVaultClient, readVaultSettings, VaultApiError, type VaultClient } from '../../providers/vault-shared/index.js';
import type { FakeVault } from '../fakes/vault.js';
import { dataOf, FakeVaults, selfSignedCertificate, sleep, tokenEnv, vaultRequest } from '../support/vault.js';

const vaults = new FakeVaults();
const clients: VaultClient[] = [];
const folders: string[] = [];
let vault: FakeVault;

beforeEach(async () => {
  vault = await vaults.start();
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
  await vaults.closeAll();
});

function client(env: Record<string, string>, options: { timeoutMs?: number } = {}): VaultClient {
  const created = createVaultClient(env, options);
  clients.push(created);
  return created;
}

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RekeyError);
  return error as RekeyError;
}

/** Creates an AppRole role with a secret ID and returns the environment of a client that logs in with it. */
async function appRoleEnv(options: { tokenTtlSeconds?: number; tokenMaxTtlSeconds?: number } = {}): Promise<{ env: Record<string, string>; secretId: string }> {
  const roleId = vault.createAppRole('rekey', { policies: ['root'], ...options });
  const created = dataOf(await vaultRequest(vault, 'POST', 'auth/approle/role/rekey/secret-id', { token: vault.rootToken, body: {} }));
  const secretId = created.secret_id as string;
  return { env: { REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_ROLE_ID: roleId, REKEY_VAULT_SECRET_ID: secretId }, secretId };
}

describe('settings', () => {
  it('requires REKEY_VAULT_ADDR', () => {
    expect(() => readVaultSettings({ REKEY_VAULT_TOKEN: 't' })).toThrow(/REKEY_VAULT_ADDR is not set/);
  });

  it('rejects two auth methods at once', () => {
    const env = { REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_TOKEN: 't', REKEY_VAULT_K8S_ROLE: 'rekey' };

    expect(() => readVaultSettings(env)).toThrow(/several Vault auth methods are configured/);
  });

  it('rejects a role ID without a secret ID', () => {
    expect(() => readVaultSettings({ REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_ROLE_ID: 'r' })).toThrow(/REKEY_VAULT_SECRET_ID is not set/);
  });

  it('rejects a CA file for an http address', () => {
    const env = { REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_TOKEN: 't', REKEY_VAULT_CACERT: '/nonexistent.pem' };

    expect(() => readVaultSettings(env)).toThrow(/REKEY_VAULT_CACERT is set, but REKEY_VAULT_ADDR uses http/);
  });

  it('defaults the Kubernetes JWT file', () => {
    const settings = readVaultSettings({ REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_K8S_ROLE: 'rekey' });

    expect(settings.auth).toEqual({ kind: 'kubernetes', mount: 'kubernetes', role: 'rekey', jwtFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' });
  });
});

describe('when authenticating with a token', () => {
  it('looks the token up once', async () => {
    const token = vault.createToken({ ttlSeconds: 600 });
    const vaultClient = client(tokenEnv(vault, token));
    vault.writeKv('app', { password: 'p1' });

    const first = await vaultClient.readKv('secret', 'app');
    const second = await vaultClient.readKv('secret', 'app');
    expect(first?.data?.password?.reveal()).toBe('p1');
    expect(second?.metadata.version).toBe(1);
    expect(vault.count('GET', 'auth/token/lookup-self')).toBe(1);
    expect(vault.count('GET', 'secret/data/app')).toBe(2);
  });

  it('renews the token before it expires', async () => {
    const token = vault.createToken({ ttlSeconds: 3, maxTtlSeconds: 60 });
    const vaultClient = client(tokenEnv(vault, token));
    const issuedAt = Date.now();
    await vaultClient.lookupSelf();

    await sleep(2_400);
    const renewals = vault.requests.filter((request) => request.method === 'POST' && request.path === 'auth/token/renew-self');
    // lookup-self reports whole seconds left (2 of 3), so the client renews up to a second early.
    expect(renewals).toHaveLength(1);
    expect(renewals[0]!.at - issuedAt).toBeGreaterThanOrEqual(900);
    expect(renewals[0]!.at - issuedAt).toBeLessThan(3_000);

    await sleep(1_000);
    const info = await vaultClient.lookupSelf();
    expect(info.ttlSeconds).toBeGreaterThanOrEqual(1);
    expect(vault.isTokenValid(token)).toBe(true);
  });

  it('fails an expired token with a clear error', async () => {
    const token = vault.createToken({ ttlSeconds: 1, renewable: false });
    const vaultClient = client(tokenEnv(vault, token));
    await vaultClient.lookupSelf();
    await sleep(1_100);

    const error = await rejection(vaultClient.readKv('secret', 'app'));
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('the Vault token in REKEY_VAULT_TOKEN');
    expect(error.message).toContain('because it is not renewable');
    expect(error.message).toContain('Set REKEY_VAULT_TOKEN to a new token');
    expect(vault.count('GET', 'secret/data/app')).toBe(0);
  });

  it('fails an unknown token with a clear error', async () => {
    const vaultClient = client(tokenEnv(vault, 'hvs.not-a-token'));

    const error = await rejection(vaultClient.readKv('secret', 'app'));
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.message).toMatch(/^Vault rejected the token in REKEY_VAULT_TOKEN \(HTTP 403 permission denied\)/);
  });

  it('reports a policy denial without logging in again', async () => {
    vault.definePolicy('nothing', []);
    const token = vault.createToken({ policies: ['nothing'] });
    const vaultClient = client(tokenEnv(vault, token));

    const error = await rejection(vaultClient.readKv('secret', 'app'));
    expect(error).toBeInstanceOf(VaultApiError);
    expect(error.code).toBe('PERMISSION_DENIED');
    expect((error as VaultApiError).httpStatus).toBe(403);
    expect(error.message).toContain('Vault rejected GET secret/data/app with HTTP 403 (permission denied)');
    expect(vault.count('GET', 'secret/data/app')).toBe(1);
  });

  it('sends the namespace header', async () => {
    const vaultClient = client(tokenEnv(vault, vault.rootToken, { REKEY_VAULT_NAMESPACE: '/team/' }));
    await vaultClient.writeKv('secret', 'app', { password: SecretValue.fromString('p1') });

    expect(vault.readKv('app', { namespace: 'team' })).toEqual({ password: 'p1' });
    expect(vault.readKv('app')).toBeNull();
    expect(vault.requests.every((request) => request.namespace === 'team')).toBe(true);
  });
});

describe('when authenticating with AppRole', () => {
  it('logs in once for several calls', async () => {
    const { env } = await appRoleEnv({ tokenTtlSeconds: 600 });
    const vaultClient = client(env);

    await vaultClient.readKv('secret', 'one');
    await vaultClient.readKv('secret', 'two');
    const info = await vaultClient.lookupSelf();
    expect(vault.count('POST', 'auth/approle/login')).toBe(1);
    expect(info.policies).toEqual(['root']);
  });

  it('logs in again once renewal reaches the max TTL', async () => {
    const { env } = await appRoleEnv({ tokenTtlSeconds: 3, tokenMaxTtlSeconds: 4 });
    const vaultClient = client(env);
    const first = await vaultClient.lookupSelf();

    await sleep(2_600);
    const second = await vaultClient.lookupSelf();
    expect(vault.count('POST', 'auth/token/renew-self')).toBe(1);
    expect(vault.count('POST', 'auth/approle/login')).toBe(2);
    expect(second.accessor).not.toBe(first.accessor);
  });

  it('logs in again after its token is revoked', async () => {
    const { env } = await appRoleEnv({ tokenTtlSeconds: 600 });
    const vaultClient = client(env);
    const first = await vaultClient.lookupSelf();
    vault.revokeAccessor(first.accessor);
    vault.writeKv('app', { password: 'p1' });

    const read = await vaultClient.readKv('secret', 'app');
    expect(read?.data?.password?.reveal()).toBe('p1');
    expect(vault.count('POST', 'auth/approle/login')).toBe(2);
    expect(vault.count('GET', 'secret/data/app')).toBe(2);
  });

  it('fails a rejected login with PERMISSION_DENIED', async () => {
    const { env } = await appRoleEnv();
    const vaultClient = client({ ...env, REKEY_VAULT_SECRET_ID: 'wrong-secret-id' });

    const error = await rejection(vaultClient.readKv('secret', 'app'));
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.message).toBe(
      "Vault rejected rekey's AppRole login at auth/approle/login (REKEY_VAULT_ROLE_ID, REKEY_VAULT_SECRET_ID) (invalid role or secret ID): " +
        'check REKEY_VAULT_ROLE_ID and set REKEY_VAULT_SECRET_ID to a valid secret ID of that role',
    );
  });
});

describe('when authenticating with Kubernetes', () => {
  it('logs in with the JWT file', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'rekey-vault-jwt-'));
    folders.push(folder);
    const jwtFile = join(folder, 'token');
    writeFileSync(jwtFile, 'eyJ.fake.jwt\n');
    vault.createKubernetesRole('rekey', { policies: ['root'], tokenTtlSeconds: 600 });
    vault.registerKubernetesJwt('rekey', 'eyJ.fake.jwt', { serviceAccount: 'rekey' });
    const vaultClient = client({ REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_K8S_ROLE: 'rekey', REKEY_VAULT_K8S_JWT_FILE: jwtFile });

    const info = await vaultClient.lookupSelf();
    expect(info.policies).toEqual(['root']);
    expect(info.ttlSeconds).toBeGreaterThanOrEqual(599);
    expect(vault.count('POST', 'auth/kubernetes/login')).toBe(1);
  });

  it('fails a missing JWT file with PRECONDITION_FAILED', async () => {
    vault.createKubernetesRole('rekey');
    const vaultClient = client({ REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_K8S_ROLE: 'rekey', REKEY_VAULT_K8S_JWT_FILE: '/nonexistent/token' });

    const error = await rejection(vaultClient.lookupSelf());
    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.message).toContain('the Kubernetes service account token /nonexistent/token cannot be read');
  });
});

describe('error mapping', () => {
  const cases = [
    { status: 503, code: 'UNAVAILABLE', retryable: true },
    { status: 502, code: 'UNAVAILABLE', retryable: true },
    { status: 500, code: 'UNAVAILABLE', retryable: true },
    { status: 412, code: 'UNAVAILABLE', retryable: true },
    { status: 429, code: 'THROTTLED', retryable: true },
  ] as const;

  for (const { status, code, retryable } of cases) {
    it(`maps HTTP ${status} to ${code}`, async () => {
      vault.injectFailure({ status, count: 1, path: 'secret/' });
      const vaultClient = client(tokenEnv(vault, vault.rootToken));

      const error = await rejection(vaultClient.readKvMetadata('secret', 'app'));
      expect(error.code).toBe(code);
      expect(error.retryable).toBe(retryable);
      expect((error as VaultApiError).httpStatus).toBe(status);
    });
  }

  it('maps a sealed Vault to retryable UNAVAILABLE', async () => {
    const vaultClient = client(tokenEnv(vault, vault.rootToken));
    await vaultClient.lookupSelf();
    vault.seal();

    const error = await rejection(vaultClient.readKv('secret', 'app'));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('Vault rejected GET secret/data/app with HTTP 503 (Vault is sealed)');
  });

  it('maps a check-and-set mismatch to STORE_CONFLICT', async () => {
    vault.writeKv('app', { password: 'p1' });
    const vaultClient = client(tokenEnv(vault, vault.rootToken));

    const error = await rejection(vaultClient.writeKv('secret', 'app', { password: SecretValue.fromString('p2') }, { cas: 0 }));
    expect(error.code).toBe('STORE_CONFLICT');
    expect((error as VaultApiError).vaultErrors).toEqual(['check-and-set parameter did not match the current version']);
    expect(vault.readKv('app')).toEqual({ password: 'p1' });
  });

  it('maps a slow response to TIMEOUT', async () => {
    const vaultClient = client(tokenEnv(vault, vault.rootToken), { timeoutMs: 100 });
    vault.setDelay(500);

    const error = await rejection(vaultClient.health());
    expect(error.code).toBe('TIMEOUT');
    expect(error.retryable).toBe(true);
    expect(error.message).toBe(`Vault did not respond to GET sys/health at ${vault.url} within 100 ms`);
  });

  it('maps a refused connection to UNAVAILABLE', async () => {
    const closed = await vaults.start();
    const address = closed.url;
    await closed.close();
    const vaultClient = client(tokenEnv(closed, vault.rootToken));

    const error = await rejection(vaultClient.readKv('secret', 'app'));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(`could not reach Vault for GET auth/token/lookup-self at ${address}`);
  });

  it('reads health from a sealed server', async () => {
    vault.seal();
    const health = await client(tokenEnv(vault, vault.rootToken)).health();

    expect(health).toMatchObject({ httpStatus: 503, sealed: true, initialized: true });
  });
});

describe('secrets in errors', () => {
  it('keeps the token and secret ID out of a login error', async () => {
    const { env, secretId } = await appRoleEnv();
    vault.injectFailure({ status: 400, count: 1, path: 'auth/approle/login', errors: [`invalid secret_id "${secretId}"`] });
    const vaultClient = client(env);

    const error = await rejection(vaultClient.lookupSelf());
    expect(error.message).toContain('invalid secret_id "[scrubbed]"');
    expect(error.message).not.toContain(secretId);
    expect(JSON.stringify(error)).not.toContain(secretId);
    expect(inspect(error)).not.toContain(secretId);
  });

  it('keeps the token and a written value out of a write error', async () => {
    const token = vault.createToken();
    const value = 'super-secret-value-123';
    vault.injectFailure({ status: 500, count: 1, path: 'secret/data/app', errors: [`could not store ${value} with token ${token}`] });
    const vaultClient = client(tokenEnv(vault, token));

    const error = await rejection(vaultClient.writeKv('secret', 'app', { password: SecretValue.fromString(value) }));
    const forms = [error.message, JSON.stringify(error), inspect(error), JSON.stringify(vaultClient), inspect(vaultClient)];
    for (const form of forms) {
      expect(form).not.toContain(value);
      expect(form).not.toContain(token);
    }
    expect(error.message).toContain('could not store [scrubbed] with token [scrubbed]');
  });

  it('keeps the token out of a network error', async () => {
    const closed = await vaults.start();
    await closed.close();
    const token = vault.createToken();
    const vaultClient = client(tokenEnv(closed, token));

    const error = await rejection(vaultClient.readKv('secret', 'app'));
    expect(JSON.stringify(error)).not.toContain(token);
    expect(inspect(error, { depth: 10 })).not.toContain(token);
  });

  it('shows only address, namespace and method in the client JSON', async () => {
    const { env, secretId } = await appRoleEnv();
    const vaultClient = client({ ...env, REKEY_VAULT_NAMESPACE: 'team' });
    await vaultClient.lookupSelf({}).catch(() => undefined);

    expect(JSON.parse(JSON.stringify(vaultClient))).toEqual({ address: vault.url, namespace: 'team', authMethod: 'approle' });
    expect(inspect(vaultClient, { depth: 10, showHidden: true })).not.toContain(secretId);
  });
});

describe('TLS', () => {
  it('rejects a certificate from an unknown CA', async () => {
    const certificate = selfSignedCertificate();
    try {
      const tlsVault = await vaults.start({ tls: certificate });
      const vaultClient = client(tokenEnv(tlsVault, tlsVault.rootToken));

      const error = await rejection(vaultClient.lookupSelf());
      expect(error.code).toBe('PRECONDITION_FAILED');
      expect(error.message).toContain('TLS verification of Vault failed');
      expect(error.message).toContain('Set REKEY_VAULT_CACERT');
      expect(tlsVault.requests).toEqual([]);
    } finally {
      certificate.remove();
    }
  });

  it('trusts the CA file from REKEY_VAULT_CACERT', async () => {
    const certificate = selfSignedCertificate();
    try {
      const tlsVault = await vaults.start({ tls: certificate });
      const vaultClient = client(tokenEnv(tlsVault, tlsVault.rootToken, { REKEY_VAULT_CACERT: certificate.certFile }));

      const info = await vaultClient.lookupSelf();
      expect(info.policies).toEqual(['root']);
    } finally {
      certificate.remove();
    }
  });
});
