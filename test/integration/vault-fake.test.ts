import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FakeVault } from '../fakes/vault.js';
import { dataOf, FakeVaults, sleep, vaultRequest } from '../support/vault.js';

const vaults = new FakeVaults();
let vault: FakeVault;

beforeEach(async () => {
  vault = await vaults.start();
});

afterEach(async () => {
  await vaults.closeAll();
});

async function write(path: string, data: Record<string, unknown>, cas?: number, namespace?: string) {
  const body = cas === undefined ? { data } : { data, options: { cas } };
  return vaultRequest(vault, 'POST', `secret/data/${path}`, { token: vault.rootToken, body, namespace });
}

describe('sys/health', () => {
  it('returns 200 while unsealed', async () => {
    const response = await vaultRequest(vault, 'GET', 'sys/health');

    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ initialized: true, sealed: false, standby: false });
  });

  it('returns 503 while sealed', async () => {
    vault.seal();
    const response = await vaultRequest(vault, 'GET', 'sys/health');

    expect(response.status).toBe(503);
    expect(response.body).toMatchObject({ sealed: true });
  });
});

describe('when sealed', () => {
  it('answers every other path with 503', async () => {
    vault.seal();

    const read = await vaultRequest(vault, 'GET', 'secret/data/app', { token: vault.rootToken });
    const lookup = await vaultRequest(vault, 'GET', 'auth/token/lookup-self', { token: vault.rootToken });
    expect(read).toEqual({ status: 503, body: { errors: ['Vault is sealed'] } });
    expect(lookup).toEqual({ status: 503, body: { errors: ['Vault is sealed'] } });
  });

  it('serves again after unseal', async () => {
    vault.seal();
    vault.unseal();

    const lookup = await vaultRequest(vault, 'GET', 'auth/token/lookup-self', { token: vault.rootToken });
    expect(lookup.status).toBe(200);
  });
});

describe('tokens', () => {
  it('rejects an unknown token with 403', async () => {
    const response = await vaultRequest(vault, 'GET', 'secret/data/app', { token: 'hvs.unknown' });

    expect(response).toEqual({ status: 403, body: { errors: ['permission denied'] } });
  });

  it('rejects a missing token with 403', async () => {
    const response = await vaultRequest(vault, 'GET', 'secret/metadata/app');

    expect(response).toEqual({ status: 403, body: { errors: ['permission denied'] } });
  });

  it('reports ttl and renewable in lookup-self', async () => {
    const token = vault.createToken({ ttlSeconds: 600, maxTtlSeconds: 3600, policies: ['app'] });
    const data = dataOf(await vaultRequest(vault, 'GET', 'auth/token/lookup-self', { token }));

    expect(data.ttl).toBeGreaterThanOrEqual(599);
    expect(data.ttl).toBeLessThanOrEqual(600);
    expect(data.creation_ttl).toBe(600);
    expect(data.explicit_max_ttl).toBe(3600);
    expect(data.renewable).toBe(true);
    expect(data.policies).toEqual(['app']);
  });

  it('caps renew-self at the max TTL with a warning', async () => {
    const token = vault.createToken({ ttlSeconds: 600, maxTtlSeconds: 700 });
    const response = await vaultRequest(vault, 'POST', 'auth/token/renew-self', { token, body: { increment: '1h' } });

    const body = response.body as { auth: { lease_duration: number; renewable: boolean }; warnings: string[] };
    expect(response.status).toBe(200);
    expect(body.auth.lease_duration).toBeLessThanOrEqual(700);
    expect(body.auth.lease_duration).toBeGreaterThanOrEqual(698);
    expect(body.warnings).toHaveLength(1);
    expect(body.warnings[0]).toContain('max_ttl');
  });

  it('rejects renew-self of a non-renewable token with 400', async () => {
    const token = vault.createToken({ ttlSeconds: 600, renewable: false });
    const response = await vaultRequest(vault, 'POST', 'auth/token/renew-self', { token, body: {} });

    expect(response).toEqual({ status: 400, body: { errors: ['lease is not renewable'] } });
  });

  it('rejects an expired token with 403', async () => {
    const token = vault.createToken({ ttlSeconds: 1 });
    await sleep(1_100);
    const response = await vaultRequest(vault, 'GET', 'auth/token/lookup-self', { token });

    expect(response).toEqual({ status: 403, body: { errors: ['permission denied'] } });
  });

  it('forgets a token after revoke-self', async () => {
    const token = vault.createToken();
    const revoke = await vaultRequest(vault, 'POST', 'auth/token/revoke-self', { token });

    expect(revoke.status).toBe(204);
    expect(vault.isTokenValid(token)).toBe(false);
  });
});

describe('policies', () => {
  it('denies a path outside the token policy', async () => {
    vault.definePolicy('app-read', [{ path: 'secret/data/app', capabilities: ['read'] }]);
    const token = vault.createToken({ policies: ['app-read'] });
    vault.writeKv('app', { password: 'p1' });
    vault.writeKv('other', { password: 'p2' });

    const allowed = await vaultRequest(vault, 'GET', 'secret/data/app', { token });
    const denied = await vaultRequest(vault, 'GET', 'secret/data/other', { token });
    const write = await vaultRequest(vault, 'POST', 'secret/data/app', { token, body: { data: { password: 'p3' } } });
    expect(allowed.status).toBe(200);
    expect(denied).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    expect(write.status).toBe(403);
  });

  it('reports capabilities through capabilities-self', async () => {
    vault.definePolicy('writer', [
      { path: 'secret/data/app/*', capabilities: ['create', 'read', 'update'] },
      { path: 'secret/metadata/+/config', capabilities: ['list'] },
    ]);
    const token = vault.createToken({ policies: ['writer'] });
    const paths = ['secret/data/app/db', 'secret/metadata/team/config', 'secret/data/other'];
    const response = await vaultRequest(vault, 'POST', 'sys/capabilities-self', { token, body: { paths } });

    expect(response.status).toBe(200);
    expect(dataOf(response)).toEqual({
      'secret/data/app/db': ['create', 'read', 'update'],
      'secret/metadata/team/config': ['list'],
      'secret/data/other': ['deny'],
    });
  });

  it('reports root for a root token', async () => {
    const response = await vaultRequest(vault, 'POST', 'sys/capabilities-self', { token: vault.rootToken, body: { paths: ['secret/data/x'] } });

    expect(dataOf(response)).toEqual({ 'secret/data/x': ['root'], capabilities: ['root'] });
  });
});

describe('KV check-and-set', () => {
  it('creates with cas 0 when the key is absent', async () => {
    const response = await write('app', { password: 'p1' }, 0);

    expect(response.status).toBe(200);
    expect(dataOf(response)).toMatchObject({ version: 1, destroyed: false, deletion_time: '' });
  });

  it('rejects cas 0 when the key exists', async () => {
    await write('app', { password: 'p1' });
    const response = await write('app', { password: 'p2' }, 0);

    expect(response).toEqual({ status: 400, body: { errors: ['check-and-set parameter did not match the current version'] } });
    expect(vault.readKv('app')).toEqual({ password: 'p1' });
  });

  it('accepts cas equal to the current version', async () => {
    await write('app', { password: 'p1' });
    const response = await write('app', { password: 'p2' }, 1);

    expect(dataOf(response).version).toBe(2);
    expect(vault.readKv('app')).toEqual({ password: 'p2' });
  });

  it('rejects a stale cas with the exact message', async () => {
    await write('app', { password: 'p1' });
    await write('app', { password: 'p2' });
    const response = await write('app', { password: 'p3' }, 1);

    expect(response).toEqual({ status: 400, body: { errors: ['check-and-set parameter did not match the current version'] } });
    expect(vault.readKv('app')).toEqual({ password: 'p2' });
  });

  it('requires cas when the key sets cas_required', async () => {
    await vaultRequest(vault, 'POST', 'secret/metadata/app', { token: vault.rootToken, body: { cas_required: true } });
    const response = await write('app', { password: 'p1' });

    expect(response).toEqual({ status: 400, body: { errors: ['check-and-set parameter required for this call'] } });
  });
});

describe('KV reads', () => {
  it('returns a missing key as 404 with empty errors', async () => {
    const response = await vaultRequest(vault, 'GET', 'secret/data/missing', { token: vault.rootToken });

    expect(response).toEqual({ status: 404, body: { errors: [] } });
  });

  it('reads an older version by number', async () => {
    await write('app', { password: 'p1' });
    await write('app', { password: 'p2' });
    const response = await vaultRequest(vault, 'GET', 'secret/data/app?version=1', { token: vault.rootToken });

    expect(dataOf(response).data).toEqual({ password: 'p1' });
    expect(dataOf(response).metadata).toMatchObject({ version: 1 });
  });

  it('keeps at most max_versions versions', async () => {
    await vaultRequest(vault, 'POST', 'secret/metadata/app', { token: vault.rootToken, body: { max_versions: 2 } });
    for (const password of ['p1', 'p2', 'p3']) await write('app', { password });
    const metadata = dataOf(await vaultRequest(vault, 'GET', 'secret/metadata/app', { token: vault.rootToken }));

    expect(Object.keys(metadata.versions as object)).toEqual(['2', '3']);
    expect(metadata.oldest_version).toBe(2);
    expect(metadata.current_version).toBe(3);
  });
});

describe('KV soft delete and destroy', () => {
  it('reads a deleted version as 404 with its deletion time', async () => {
    await write('app', { password: 'p1' });
    const deleted = await vaultRequest(vault, 'DELETE', 'secret/data/app', { token: vault.rootToken });
    const response = await vaultRequest(vault, 'GET', 'secret/data/app', { token: vault.rootToken });

    expect(deleted.status).toBe(204);
    expect(response.status).toBe(404);
    const data = dataOf(response);
    expect(data.data).toBeNull();
    expect(data.metadata).toMatchObject({ version: 1, destroyed: false });
    expect((data.metadata as { deletion_time: string }).deletion_time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('restores a deleted version with undelete', async () => {
    await write('app', { password: 'p1' });
    await vaultRequest(vault, 'POST', 'secret/delete/app', { token: vault.rootToken, body: { versions: [1] } });
    await vaultRequest(vault, 'POST', 'secret/undelete/app', { token: vault.rootToken, body: { versions: [1] } });
    const response = await vaultRequest(vault, 'GET', 'secret/data/app', { token: vault.rootToken });

    expect(response.status).toBe(200);
    expect(dataOf(response).data).toEqual({ password: 'p1' });
  });

  it('keeps a destroyed version unreadable after undelete', async () => {
    await write('app', { password: 'p1' });
    await vaultRequest(vault, 'POST', 'secret/destroy/app', { token: vault.rootToken, body: { versions: [1] } });
    await vaultRequest(vault, 'POST', 'secret/undelete/app', { token: vault.rootToken, body: { versions: [1] } });
    const response = await vaultRequest(vault, 'GET', 'secret/data/app', { token: vault.rootToken });

    expect(response.status).toBe(404);
    expect(dataOf(response).metadata).toMatchObject({ version: 1, destroyed: true, deletion_time: '' });
  });

  it('removes every version with a metadata delete', async () => {
    await write('app', { password: 'p1' });
    const deleted = await vaultRequest(vault, 'DELETE', 'secret/metadata/app', { token: vault.rootToken });
    const metadata = await vaultRequest(vault, 'GET', 'secret/metadata/app', { token: vault.rootToken });

    expect(deleted.status).toBe(204);
    expect(metadata).toEqual({ status: 404, body: { errors: [] } });
  });
});

describe('KV metadata', () => {
  it('stores custom metadata without a new version', async () => {
    await write('app', { password: 'p1' });
    await vaultRequest(vault, 'POST', 'secret/metadata/app', { token: vault.rootToken, body: { custom_metadata: { owner: 'team-a' } } });
    const metadata = dataOf(await vaultRequest(vault, 'GET', 'secret/metadata/app', { token: vault.rootToken }));

    expect(metadata.custom_metadata).toEqual({ owner: 'team-a' });
    expect(metadata.current_version).toBe(1);
  });

  it('lists keys and folders', async () => {
    await write('team/app', { a: '1' });
    await write('team/db/main', { a: '1' });
    const response = await vaultRequest(vault, 'LIST', 'secret/metadata/team', { token: vault.rootToken });

    expect(dataOf(response).keys).toEqual(['app', 'db/']);
    expect(vault.count('LIST', 'secret/metadata/team')).toBe(1);
  });

  it('returns an empty list as 404 with empty errors', async () => {
    const response = await vaultRequest(vault, 'LIST', 'secret/metadata/nothing', { token: vault.rootToken });

    expect(response).toEqual({ status: 404, body: { errors: [] } });
  });

  it('rejects a custom metadata value that is not a string', async () => {
    const response = await vaultRequest(vault, 'POST', 'secret/metadata/app', { token: vault.rootToken, body: { custom_metadata: { n: 1 } } });

    expect(response.status).toBe(400);
  });
});

describe('namespaces', () => {
  it('keep KV data apart', async () => {
    await write('app', { password: 'root-ns' });
    await write('app', { password: 'team-ns' }, undefined, 'team');

    const inTeam = await vaultRequest(vault, 'GET', 'secret/data/app', { token: vault.rootToken, namespace: 'team' });
    const inOther = await vaultRequest(vault, 'GET', 'secret/data/app', { token: vault.rootToken, namespace: 'other' });
    expect(dataOf(inTeam).data).toEqual({ password: 'team-ns' });
    expect(inOther).toEqual({ status: 404, body: { errors: [] } });
    expect(vault.readKv('app')).toEqual({ password: 'root-ns' });
  });

  it('reject a child namespace token in the root namespace', async () => {
    const token = vault.createToken({ namespace: 'team' });

    const inTeam = await vaultRequest(vault, 'GET', 'auth/token/lookup-self', { token, namespace: 'team/' });
    const inRoot = await vaultRequest(vault, 'GET', 'auth/token/lookup-self', { token });
    expect(inTeam.status).toBe(200);
    expect(inRoot.status).toBe(403);
  });
});

describe('AppRole', () => {
  it('logs in with a role ID and a secret ID', async () => {
    vault.createAppRole('deployer', { tokenTtlSeconds: 60 });
    const roleId = dataOf(await vaultRequest(vault, 'GET', 'auth/approle/role/deployer/role-id', { token: vault.rootToken })).role_id;
    const created = dataOf(await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id', { token: vault.rootToken, body: {} }));
    const login = await vaultRequest(vault, 'POST', 'auth/approle/login', { body: { role_id: roleId, secret_id: created.secret_id } });

    const auth = (login.body as { auth: { client_token: string; lease_duration: number; metadata: Record<string, string> } }).auth;
    expect(login.status).toBe(200);
    expect(auth.lease_duration).toBe(60);
    expect(auth.metadata).toEqual({ role_name: 'deployer' });
    expect(vault.isTokenValid(auth.client_token)).toBe(true);
  });

  it('rejects an unknown secret ID with 400', async () => {
    const roleId = vault.createAppRole('deployer');
    const login = await vaultRequest(vault, 'POST', 'auth/approle/login', { body: { role_id: roleId, secret_id: 'not-a-secret-id' } });

    expect(login).toEqual({ status: 400, body: { errors: ['invalid role or secret ID'] } });
  });

  it('lists, looks up and destroys secret IDs by accessor', async () => {
    vault.createAppRole('deployer');
    const created = dataOf(await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id', { token: vault.rootToken, body: {} }));
    const accessor = created.secret_id_accessor as string;

    const listed = await vaultRequest(vault, 'LIST', 'auth/approle/role/deployer/secret-id', { token: vault.rootToken });
    const lookup = await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id-accessor/lookup', {
      token: vault.rootToken, body: { secret_id_accessor: accessor },
    });
    const destroyed = await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id-accessor/destroy', {
      token: vault.rootToken, body: { secret_id_accessor: accessor },
    });
    expect(dataOf(listed).keys).toEqual([accessor]);
    expect(dataOf(lookup).secret_id_accessor).toBe(accessor);
    expect(destroyed.status).toBe(204);
    expect(vault.secretIdAccessors('deployer')).toEqual([]);
  });

  it('answers a lookup of a destroyed accessor with 404', async () => {
    vault.createAppRole('deployer');
    const response = await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id-accessor/lookup', {
      token: vault.rootToken, body: { secret_id_accessor: 'gone' },
    });

    expect(response.status).toBe(404);
    expect(dataOf(response).error).toBe('failed to find accessor entry for secret_id_accessor: "gone"');
  });

  it('answers a destroy of an unknown accessor with 500', async () => {
    vault.createAppRole('deployer');
    const response = await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id-accessor/destroy', {
      token: vault.rootToken, body: { secret_id_accessor: 'gone' },
    });

    expect(response).toEqual({ status: 500, body: { errors: ['1 error occurred:\n\t* failed to find accessor entry for secret_id_accessor: "gone"\n\n'] } });
  });

  it('returns an empty secret ID list as 404', async () => {
    vault.createAppRole('deployer');
    const response = await vaultRequest(vault, 'LIST', 'auth/approle/role/deployer/secret-id', { token: vault.rootToken });

    expect(response).toEqual({ status: 404, body: { errors: [] } });
  });

  it('looks a secret ID up by value', async () => {
    vault.createAppRole('deployer');
    const created = dataOf(await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id', {
      token: vault.rootToken, body: { metadata: '{"owner":"ci"}' },
    }));
    const lookup = await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id/lookup', {
      token: vault.rootToken, body: { secret_id: created.secret_id },
    });
    const unknown = await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id/lookup', {
      token: vault.rootToken, body: { secret_id: 'unknown' },
    });

    expect(dataOf(lookup)).toMatchObject({ secret_id_accessor: created.secret_id_accessor, metadata: { owner: 'ci' } });
    expect(unknown.status).toBe(204);
  });
});

describe('Kubernetes auth', () => {
  it('accepts a registered JWT and rejects others', async () => {
    vault.createKubernetesRole('rekey', { tokenTtlSeconds: 120 });
    vault.registerKubernetesJwt('rekey', 'jwt-1', { serviceAccount: 'rekey-sa' });

    const accepted = await vaultRequest(vault, 'POST', 'auth/kubernetes/login', { body: { role: 'rekey', jwt: 'jwt-1' } });
    const rejected = await vaultRequest(vault, 'POST', 'auth/kubernetes/login', { body: { role: 'rekey', jwt: 'jwt-2' } });
    const unknownRole = await vaultRequest(vault, 'POST', 'auth/kubernetes/login', { body: { role: 'nobody', jwt: 'jwt-1' } });
    expect(accepted.status).toBe(200);
    expect((accepted.body as { auth: { lease_duration: number } }).auth.lease_duration).toBe(120);
    expect(rejected).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    expect(unknownRole).toEqual({ status: 400, body: { errors: ['invalid role name "nobody"'] } });
  });
});

describe('fault injection', () => {
  it('fails matching requests the given number of times', async () => {
    vault.injectFailure({ status: 503, count: 2, path: 'secret/' });

    const first = await vaultRequest(vault, 'GET', 'secret/metadata/app', { token: vault.rootToken });
    const other = await vaultRequest(vault, 'GET', 'auth/token/lookup-self', { token: vault.rootToken });
    const second = await vaultRequest(vault, 'GET', 'secret/metadata/app', { token: vault.rootToken });
    const third = await vaultRequest(vault, 'GET', 'secret/metadata/app', { token: vault.rootToken });
    expect(first).toEqual({ status: 503, body: { errors: ['Vault is sealed'] } });
    expect(other.status).toBe(200);
    expect(second.status).toBe(503);
    expect(third).toEqual({ status: 404, body: { errors: [] } });
  });

  it('delays responses', async () => {
    vault.setDelay(200);
    const started = Date.now();
    await vaultRequest(vault, 'GET', 'sys/health');

    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('records requests with method, path and namespace', async () => {
    await vaultRequest(vault, 'GET', 'secret/data/app?version=2', { token: vault.rootToken, namespace: 'team' });

    expect(vault.requests).toEqual([expect.objectContaining({ method: 'GET', path: 'secret/data/app', query: '?version=2', namespace: 'team' })]);
    expect(vault.count('GET', /^secret\/data\//)).toBe(1);
  });
});
