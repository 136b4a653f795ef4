import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StepContext } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { createVaultKvStore, type VaultKvParams, type VaultKvStore } from '../../providers/vault-kv/index.js';
import type { FakeVault } from '../fakes/vault.js';
import { stepContext } from '../support/aws.js';
import { FakeVaults, tokenEnv } from '../support/vault.js';

const vaults = new FakeVaults();
const stores: VaultKvStore[] = [];
let vault: FakeVault;
let store: VaultKvStore;
let ctx: StepContext;

const PARAMS: VaultKvParams = { path: 'ci/deployer', fields: { accessKeyId: 'access_key_id', secretAccessKey: 'secret_access_key' } };
const OLD_VALUE = { access_key_id: 'AKIAOLD', secret_access_key: 'old-secret' };

beforeEach(async () => {
  vault = await vaults.start();
  store = newStore(vault.rootToken);
  ctx = stepContext();
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((created) => created.close()));
  await vaults.closeAll();
});

function newStore(token: string): VaultKvStore {
  const created = createVaultKvStore(tokenEnv(vault, token));
  stores.push(created);
  return created;
}

function document(accessKeyId: string, secretAccessKey: string): SecretValue {
  return SecretValue.fromString(JSON.stringify({ accessKeyId, secretAccessKey }));
}

function pendingPath(rotationId = ctx.rotationId, path = PARAMS.path): string {
  return `rekey-pending/${path}/${rotationId}`;
}

async function stage(value = document('AKIANEW', 'new-secret'), keyId = 'AKIANEW', rotationId = ctx.rotationId): Promise<void> {
  await store.stage(PARAMS, { rotationId, keyId, value }, ctx);
}

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RekeyError);
  return error as RekeyError;
}

describe('stage', () => {
  it('hides the value from consumers', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();

    expect(vault.readKv(PARAMS.path)).toEqual(OLD_VALUE);
    expect(vault.readKv(pendingPath())).toEqual({ access_key_id: 'AKIANEW', secret_access_key: 'new-secret' });
  });

  it('records base version and key id', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();

    expect(vault.kvCustomMetadata(pendingPath())).toEqual({
      rekey_base_version: '1', rekey_key_id: 'AKIANEW', rekey_rotation_id: ctx.rotationId, rekey_run_id: ctx.runId,
    });
  });

  it('keeps field names without a mapping', async () => {
    const params = { path: 'plain/app' };
    await store.stage(params, { rotationId: ctx.rotationId, keyId: 'k1', value: document('AKIA1', 's1') }, ctx);

    expect(vault.readKv(pendingPath(ctx.rotationId, 'plain/app'))).toEqual({ accessKeyId: 'AKIA1', secretAccessKey: 's1' });
  });

  it('is harmless when repeated', async () => {
    await stage();
    await stage();

    expect(vault.readKv(pendingPath())).toEqual({ access_key_id: 'AKIANEW', secret_access_key: 'new-secret' });
    expect(vault.count('POST', `secret/data/${pendingPath()}`)).toBe(2);
    expect(vault.readKv(pendingPath(), { version: 2 })).toBeNull();
  });

  it('rejects another value for the same rotation', async () => {
    await stage();
    const error = await rejection(stage(document('AKIANEW', 'other-secret')));

    expect(error.code).toBe('STORE_CONFLICT');
    expect(error.message).toContain(`secret/data/${pendingPath()} already contains another value for rotation ${ctx.rotationId}`);
    expect(error.message).not.toContain('other-secret');
    expect(vault.readKv(pendingPath())).toEqual({ access_key_id: 'AKIANEW', secret_access_key: 'new-secret' });
  });

  it('rejects another key id for the same rotation', async () => {
    await stage();
    const error = await rejection(stage(document('AKIAOTHER', 'new-secret'), 'AKIAOTHER'));

    expect(error.code).toBe('STORE_CONFLICT');
    expect(error.message).toBe(`secret/data/${pendingPath()} contains key AKIANEW, not AKIAOTHER: a rotation id must not be reused for a new value`);
  });

  it('keeps the first base version on retry', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();
    vault.writeKv(PARAMS.path, { access_key_id: 'AKIAHAND', secret_access_key: 'by-hand' });
    await stage();

    expect(vault.kvCustomMetadata(pendingPath())?.rekey_base_version).toBe('1');
  });

  it('rejects a path under the pending prefix', async () => {
    const error = await rejection(store.stage({ path: 'rekey-pending/x' }, { rotationId: ctx.rotationId, keyId: 'k', value: document('a', 'b') }, ctx));

    expect(error.code).toBe('INVALID_PARAMETERS');
  });
});

describe('promote', () => {
  it('publishes the value with custom metadata', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();
    await store.promote(PARAMS, ctx.rotationId, ctx);

    expect(vault.readKv(PARAMS.path)).toEqual({ access_key_id: 'AKIANEW', secret_access_key: 'new-secret' });
    expect(vault.kvCustomMetadata(PARAMS.path)).toEqual({
      rekey_run_id: ctx.runId, rekey_rotation_id: ctx.rotationId, rekey_key_id: 'AKIANEW', rekey_version: '2',
    });
    expect(vault.kvKeys()).toEqual(['ci/deployer']);
  });

  it('keeps custom metadata of others', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await vaultMetadata({ owner: 'team-a' });
    await stage();
    await store.promote(PARAMS, ctx.rotationId, ctx);

    expect(vault.kvCustomMetadata(PARAMS.path)?.owner).toBe('team-a');
  });

  it('creates a missing consumer path', async () => {
    await stage();
    await store.promote(PARAMS, ctx.rotationId, ctx);

    expect(vault.readKv(PARAMS.path)).toEqual({ access_key_id: 'AKIANEW', secret_access_key: 'new-secret' });
    expect(vault.kvCustomMetadata(PARAMS.path)?.rekey_version).toBe('1');
  });

  it('fails after a concurrent write and keeps it', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();
    const concurrent = { access_key_id: 'AKIAHAND', secret_access_key: 'by-hand' };
    vault.writeKv(PARAMS.path, concurrent);

    const error = await rejection(store.promote(PARAMS, ctx.rotationId, ctx));
    expect(error.code).toBe('STORE_CONFLICT');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`secret/data/ci/deployer changed after rotation ${ctx.rotationId} was staged: version 2 is current, but the stage recorded version 1`);
    expect(vault.readKv(PARAMS.path)).toEqual(concurrent);
    expect(vault.kvCustomMetadata(PARAMS.path)).toEqual({});
    expect(vault.readKv(pendingPath())).toEqual({ access_key_id: 'AKIANEW', secret_access_key: 'new-secret' });
  });

  it('fails after a concurrent write between two stages', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();
    vault.writeKv(PARAMS.path, { access_key_id: 'AKIAHAND', secret_access_key: 'by-hand' });
    await stage();

    const error = await rejection(store.promote(PARAMS, ctx.rotationId, ctx));
    expect(error.code).toBe('STORE_CONFLICT');
    expect(vault.readKv(PARAMS.path)).toEqual({ access_key_id: 'AKIAHAND', secret_access_key: 'by-hand' });
  });

  it('is harmless when repeated', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();
    await store.promote(PARAMS, ctx.rotationId, ctx);
    await store.promote(PARAMS, ctx.rotationId, ctx);
    await stage();

    expect(vault.count('POST', 'secret/data/ci/deployer')).toBe(1);
    expect(vault.readKv(PARAMS.path, { version: 3 })).toBeNull();
    expect(vault.kvKeys()).toEqual(['ci/deployer']);
  });

  it('finishes a promote that stopped after the write', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();
    vault.injectFailure({ status: 500, count: 1, method: 'POST', path: 'secret/metadata/ci/deployer' });

    const error = await rejection(store.promote(PARAMS, ctx.rotationId, ctx));
    expect(error.code).toBe('UNAVAILABLE');
    expect(vault.readKv(PARAMS.path)).toEqual({ access_key_id: 'AKIANEW', secret_access_key: 'new-secret' });

    await store.promote(PARAMS, ctx.rotationId, ctx);
    expect(vault.kvCustomMetadata(PARAMS.path)).toMatchObject({ rekey_rotation_id: ctx.rotationId, rekey_version: '2' });
    expect(vault.readKv(PARAMS.path, { version: 3 })).toBeNull();
    expect(vault.kvKeys()).toEqual(['ci/deployer']);
  });

  it('fails without a staged version', async () => {
    const error = await rejection(store.promote(PARAMS, ctx.rotationId, ctx));

    expect(error.code).toBe('MATERIAL_LOST');
    expect(error.message).toBe(`secret/data/${pendingPath()} contains no pending version of rotation ${ctx.rotationId} to promote: it was never staged or was discarded`);
  });
});

describe('readPending', () => {
  it('returns the material fields', async () => {
    await stage();
    const value = await store.readPending(PARAMS, ctx.rotationId, ctx);

    expect(JSON.parse(value?.reveal() ?? 'null')).toEqual({ accessKeyId: 'AKIANEW', secretAccessKey: 'new-secret' });
  });

  it('returns null for an unknown rotation', async () => {
    await stage();

    expect(await store.readPending(PARAMS, 'other-rotation', ctx)).toBeNull();
  });

  it('returns the value after promote', async () => {
    await stage();
    await store.promote(PARAMS, ctx.rotationId, ctx);
    const value = await store.readPending(PARAMS, ctx.rotationId, ctx);

    expect(JSON.parse(value?.reveal() ?? 'null')).toEqual({ accessKeyId: 'AKIANEW', secretAccessKey: 'new-secret' });
  });
});

describe('discard', () => {
  it('deletes the pending version only', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();
    await store.discard(PARAMS, ctx.rotationId, ctx);

    expect(vault.kvKeys()).toEqual(['ci/deployer']);
    expect(vault.readKv(PARAMS.path)).toEqual(OLD_VALUE);
    expect(await store.readPending(PARAMS, ctx.rotationId, ctx)).toBeNull();
  });

  it('succeeds when already gone', async () => {
    await store.discard(PARAMS, ctx.rotationId, ctx);

    expect(vault.kvKeys()).toEqual([]);
  });
});

describe('describe', () => {
  it('reports nothing before a rotation', async () => {
    expect(await store.describe(PARAMS, ctx)).toEqual({ currentKeyId: null, pendingRotationId: null });
  });

  it('reports the pending rotation', async () => {
    vault.writeKv(PARAMS.path, OLD_VALUE);
    await stage();

    expect(await store.describe(PARAMS, ctx)).toEqual({ currentKeyId: null, pendingRotationId: ctx.rotationId });
  });

  it('reports the promoted key id', async () => {
    await stage();
    await store.promote(PARAMS, ctx.rotationId, ctx);

    expect(await store.describe(PARAMS, ctx)).toEqual({ currentKeyId: 'AKIANEW', pendingRotationId: null });
  });

  it('reports no key id after another writer', async () => {
    await stage();
    await store.promote(PARAMS, ctx.rotationId, ctx);
    vault.writeKv(PARAMS.path, { access_key_id: 'AKIAHAND', secret_access_key: 'by-hand' });

    expect(await store.describe(PARAMS, ctx)).toEqual({ currentKeyId: null, pendingRotationId: null });
  });

  it('ignores pending versions of a deeper path', async () => {
    const deeper = { path: 'ci/deployer/extra' };
    await store.stage(deeper, { rotationId: 'rotation-deeper', keyId: 'k', value: document('a', 'b') }, ctx);

    expect(await store.describe(PARAMS, ctx)).toEqual({ currentKeyId: null, pendingRotationId: null });
  });

  it('reads metadata only', async () => {
    await stage();
    await store.promote(PARAMS, ctx.rotationId, ctx);
    vault.clearRequests();
    await store.describe(PARAMS, ctx);

    expect(vault.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      'GET secret/metadata/ci/deployer', 'LIST secret/metadata/rekey-pending/ci/deployer/',
    ]);
  });
});

describe('check', () => {
  it('passes with a root token', async () => {
    await store.check(PARAMS, ctx);

    expect(vault.count('POST', 'sys/capabilities-self')).toBe(1);
  });

  it('passes with a policy that grants what the store needs', async () => {
    vault.definePolicy('rekey-kv', [
      { path: 'secret/data/ci/deployer', capabilities: ['create', 'read', 'update'] },
      { path: 'secret/metadata/ci/deployer', capabilities: ['read', 'update'] },
      { path: 'secret/data/rekey-pending/*', capabilities: ['create', 'read', 'update', 'delete'] },
      { path: 'secret/metadata/rekey-pending/*', capabilities: ['create', 'read', 'update', 'delete', 'list'] },
    ]);
    const scoped = newStore(vault.createToken({ policies: ['rekey-kv'] }));

    await scoped.check(PARAMS, ctx);
    await scoped.stage(PARAMS, { rotationId: ctx.rotationId, keyId: 'AKIANEW', value: document('AKIANEW', 'new-secret') }, ctx);
    await scoped.promote(PARAMS, ctx.rotationId, ctx);
    expect(vault.readKv(PARAMS.path)).toEqual({ access_key_id: 'AKIANEW', secret_access_key: 'new-secret' });
  });

  it('names the missing capabilities', async () => {
    vault.definePolicy('read-only', [
      { path: 'secret/data/ci/deployer', capabilities: ['read'] },
      { path: 'secret/metadata/ci/deployer', capabilities: ['read'] },
    ]);
    const scoped = newStore(vault.createToken({ policies: ['read-only'] }));

    const error = await rejection(scoped.check(PARAMS, ctx));
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.message).toBe(
      "rekey's Vault token lacks capabilities for vault-kv target secret/data/ci/deployer: secret/data/ci/deployer (create); " +
        'secret/metadata/ci/deployer (update); ' +
        `secret/data/${pendingPath()} (read, create); ` +
        `secret/metadata/${pendingPath()} (read, create, update, delete); ` +
        'secret/metadata/rekey-pending/ci/deployer/ (list). Grant them in the token\'s policy',
    );
  });

  it('rejects an invalid token', async () => {
    const error = await rejection(newStore('hvs.invalid').check(PARAMS, ctx));

    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.message).toContain('Vault rejected the token in REKEY_VAULT_TOKEN');
  });

  it('reports a sealed Vault as retryable', async () => {
    vault.seal();
    const error = await rejection(store.check(PARAMS, ctx));

    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retryable).toBe(true);
  });
});

describe('when using a namespace and a mount', () => {
  it('writes under both', async () => {
    const teamVault = await vaults.start({ kvMounts: ['kv/team'] });
    const teamStore = createVaultKvStore(tokenEnv(teamVault, teamVault.rootToken, { REKEY_VAULT_NAMESPACE: 'ops' }));
    stores.push(teamStore);
    const params = { ...PARAMS, mount: 'kv/team' };

    await teamStore.stage(params, { rotationId: ctx.rotationId, keyId: 'AKIANEW', value: document('AKIANEW', 'new-secret') }, ctx);
    await teamStore.promote(params, ctx.rotationId, ctx);
    expect(teamVault.readKv(PARAMS.path, { mount: 'kv/team', namespace: 'ops' })).toEqual({ access_key_id: 'AKIANEW', secret_access_key: 'new-secret' });
    expect(teamVault.readKv(PARAMS.path, { mount: 'kv/team' })).toBeNull();
  });
});

async function vaultMetadata(customMetadata: Record<string, string>): Promise<void> {
  const response = await fetch(`${vault.url}/v1/secret/metadata/${PARAMS.path}`, {
    method: 'POST',
    headers: { 'X-Vault-Token': vault.rootToken, 'content-type': 'application/json' },
    body: JSON.stringify({ custom_metadata: customMetadata }),
  });
  expect(response.status).toBe(204);
}
