import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KnownKeys, StepContext } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { plainField, renderMaterial, secretField, SecretValue, type Material } from '../../src/secret.js';
import {
  createVaultApproleSecretIdProvider, type VaultApproleSecretIdParams, type VaultApproleSecretIdProvider,
} from '../../providers/vault-approle-secret-id/index.js';
import { createVaultKvStore, type VaultKvStore } from '../../providers/vault-kv/index.js';
import type { FakeVault } from '../fakes/vault.js';
import { stepContext, verifyWithinPolicy } from '../support/aws.js';
import { dataOf, FakeVaults, tokenEnv, vaultRequest } from '../support/vault.js';

const NOTHING_KNOWN: KnownKeys = { currentKeyId: null, unpromotedKeyIds: [] };
const PARAMS: VaultApproleSecretIdParams = { role: 'deployer' };

const vaults = new FakeVaults();
const closables: Array<VaultApproleSecretIdProvider | VaultKvStore> = [];
let vault: FakeVault;
let provider: VaultApproleSecretIdProvider;
let roleId: string;
let ctx: StepContext;

beforeEach(async () => {
  vault = await vaults.start();
  roleId = vault.createAppRole('deployer', { tokenTtlSeconds: 600 });
  provider = createVaultApproleSecretIdProvider(tokenEnv(vault, vault.rootToken));
  closables.push(provider);
  ctx = stepContext();
});

afterEach(async () => {
  await Promise.all(closables.splice(0).map((closable) => closable.close()));
  await vaults.closeAll();
});

/** Creates a secret ID by hand, as an operator would, and returns it with its accessor. */
async function handMadeSecretId(role = 'deployer'): Promise<{ secretId: string; accessor: string }> {
  const created = dataOf(await vaultRequest(vault, 'POST', `auth/approle/role/${role}/secret-id`, { token: vault.rootToken, body: {} }));
  return { secretId: created.secret_id as string, accessor: created.secret_id_accessor as string };
}

async function loginStatus(secretId: string): Promise<number> {
  return (await vaultRequest(vault, 'POST', 'auth/approle/login', { body: { role_id: roleId, secret_id: secretId } })).status;
}

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RekeyError);
  return error as RekeyError;
}

function bogusMaterial(keyId: string): Material {
  return { keyId, fields: { role_id: roleId, secret_id: SecretValue.fromString('00000000-0000-4000-8000-000000000000') } };
}

describe('a full rotation', () => {
  it('replaces the old secret ID with a verified one', async () => {
    const old = await handMadeSecretId();
    const store = createVaultKvStore(tokenEnv(vault, vault.rootToken));
    closables.push(store);
    const target = { path: 'ci/deployer-approle' };

    const inspection = await provider.inspect(PARAMS, NOTHING_KNOWN, ctx);
    expect(inspection).toEqual({ currentKeyId: old.accessor, orphanKeyIds: [], otherKeyIds: [] });

    const material = await provider.mint(PARAMS, ctx);
    await store.stage(target, { rotationId: ctx.rotationId, keyId: material.keyId, value: renderMaterial(material) }, ctx);
    await verifyWithinPolicy(provider, PARAMS, material, ctx);
    await store.promote(target, ctx.rotationId, ctx);
    await provider.revoke(PARAMS, old.accessor, ctx);

    const newSecretId = secretField(material, 'secret_id').reveal();
    expect(await loginStatus(newSecretId)).toBe(200);
    expect(await loginStatus(old.secretId)).toBe(400);
    expect(await provider.confirm(PARAMS, old.accessor, ctx)).toBe(true);
    expect(vault.secretIdAccessors('deployer')).toEqual([material.keyId]);
    expect(vault.readKv(target.path)).toEqual({ role_id: roleId, secret_id: newSecretId });
    expect(vault.kvCustomMetadata(target.path)?.rekey_key_id).toBe(material.keyId);
  });
});

describe('inspect', () => {
  it('prefers the key rekey promoted', async () => {
    const first = await handMadeSecretId();
    const second = await handMadeSecretId();
    const inspection = await provider.inspect(PARAMS, { currentKeyId: second.accessor, unpromotedKeyIds: [] }, ctx);

    expect(inspection).toEqual({ currentKeyId: second.accessor, orphanKeyIds: [], otherKeyIds: [first.accessor] });
  });

  it('reports unpromoted keys as orphans', async () => {
    const current = await handMadeSecretId();
    const orphan = await handMadeSecretId();
    const inspection = await provider.inspect(PARAMS, { currentKeyId: current.accessor, unpromotedKeyIds: [orphan.accessor, 'gone'] }, ctx);

    expect(inspection).toEqual({ currentKeyId: current.accessor, orphanKeyIds: [orphan.accessor], otherKeyIds: [] });
  });

  it('takes the only other key when the known one is gone', async () => {
    const only = await handMadeSecretId();
    const orphan = await handMadeSecretId();
    const inspection = await provider.inspect(PARAMS, { currentKeyId: 'destroyed-by-hand', unpromotedKeyIds: [orphan.accessor] }, ctx);

    expect(inspection).toEqual({ currentKeyId: only.accessor, orphanKeyIds: [orphan.accessor], otherKeyIds: [] });
  });

  it('reports no current key among several unknown ones', async () => {
    const first = await handMadeSecretId();
    const second = await handMadeSecretId();
    const inspection = await provider.inspect(PARAMS, NOTHING_KNOWN, ctx);

    expect(inspection.currentKeyId).toBeNull();
    expect(inspection.orphanKeyIds).toEqual([]);
    expect([...(inspection.otherKeyIds ?? [])].sort()).toEqual([first.accessor, second.accessor].sort());
  });

  it('reports no current key for a role without secret IDs', async () => {
    expect(await provider.inspect(PARAMS, NOTHING_KNOWN, ctx)).toEqual({ currentKeyId: null, orphanKeyIds: [], otherKeyIds: [] });
  });

  it('fails for a missing role', async () => {
    const error = await rejection(provider.inspect({ role: 'nobody' }, NOTHING_KNOWN, ctx));

    expect(error.code).toBe('TARGET_NOT_FOUND');
    expect(error.message).toBe('AppRole role "nobody" not found at auth/approle: create the role or fix the credential\'s role and mount');
  });
});

describe('mint', () => {
  it('returns the role ID and a new secret ID', async () => {
    const material = await provider.mint(PARAMS, ctx);

    expect(plainField(material, 'role_id')).toBe(roleId);
    expect(secretField(material, 'secret_id').reveal()).toMatch(/^[0-9a-f-]{36}$/);
    expect(vault.secretIdAccessors('deployer')).toEqual([material.keyId]);
  });

  it('tags the secret ID with the rotation', async () => {
    const material = await provider.mint(PARAMS, ctx);
    const lookup = await vaultRequest(vault, 'POST', 'auth/approle/role/deployer/secret-id-accessor/lookup', {
      token: vault.rootToken, body: { secret_id_accessor: material.keyId },
    });

    expect(dataOf(lookup).metadata).toEqual({ rekey_run_id: ctx.runId, rekey_rotation_id: ctx.rotationId, rekey_credential_id: ctx.credentialId });
  });

  it('keeps the secret ID out of the material JSON', async () => {
    const material = await provider.mint(PARAMS, ctx);
    const secretId = secretField(material, 'secret_id').reveal();

    expect(JSON.stringify(material)).not.toContain(secretId);
    expect(inspect(material)).not.toContain(secretId);
    expect(JSON.stringify(provider)).not.toContain(vault.rootToken);
  });

  it('uses a custom mount', async () => {
    const custom = await vaults.start({ appRoleMounts: ['approle-ci'] });
    const customRoleId = custom.createAppRole('deployer', { mount: 'approle-ci' });
    const customProvider = createVaultApproleSecretIdProvider(tokenEnv(custom, custom.rootToken));
    closables.push(customProvider);
    const params = { role: 'deployer', mount: 'approle-ci' };

    const material = await customProvider.mint(params, ctx);
    await customProvider.verify(params, material, ctx);
    expect(plainField(material, 'role_id')).toBe(customRoleId);
    expect(custom.secretIdAccessors('deployer', { mount: 'approle-ci' })).toEqual([material.keyId]);
  });
});

describe('verify', () => {
  it('revokes the token of its login', async () => {
    const material = await provider.mint(PARAMS, ctx);
    await provider.verify(PARAMS, material, ctx);

    expect(vault.count('POST', 'auth/approle/login')).toBe(1);
    expect(vault.count('POST', 'auth/token/revoke-self')).toBe(1);
  });

  it('fails a rejected secret ID with VERIFY_FAILED', async () => {
    const error = await rejection(provider.verify(PARAMS, bogusMaterial('unknown-accessor'), ctx));

    expect(error.code).toBe('VERIFY_FAILED');
    expect(error.message).toBe('Vault rejected the new secret ID (key unknown-accessor) of AppRole role "deployer" at auth/approle/login (invalid role or secret ID)');
  });

  it('maps a 503 to retryable UNAVAILABLE', async () => {
    const material = await provider.mint(PARAMS, ctx);
    vault.injectFailure({ status: 503, count: 1, path: 'auth/approle/login' });

    const error = await rejection(provider.verify(PARAMS, material, ctx));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retryable).toBe(true);
  });

  it('maps a 412 to NOT_READY', async () => {
    const material = await provider.mint(PARAMS, ctx);
    vault.injectFailure({ status: 412, count: 1, path: 'auth/approle/login' });

    const error = await rejection(provider.verify(PARAMS, material, ctx));
    expect(error.code).toBe('NOT_READY');
  });

  it('spares the uses of a limited secret ID', async () => {
    vault.createAppRole('one-shot', { secretIdNumUses: 1 });
    const params = { role: 'one-shot' };
    const material = await provider.mint(params, ctx);
    await provider.verify(params, material, ctx);

    expect(vault.count('POST', 'auth/approle/login')).toBe(0);
    expect(vault.secretIdAccessors('one-shot')).toEqual([material.keyId]);
  });

  it('keeps the secret ID out of its errors', async () => {
    const material = await provider.mint(PARAMS, ctx);
    const secretId = secretField(material, 'secret_id').reveal();
    vault.injectFailure({ status: 400, count: 1, path: 'auth/approle/login', errors: [`invalid secret_id "${secretId}"`] });

    const error = await rejection(provider.verify(PARAMS, material, ctx));
    expect(error.code).toBe('VERIFY_FAILED');
    expect(error.message).toContain('invalid secret_id "[scrubbed]"');
    expect(JSON.stringify(error)).not.toContain(secretId);
    expect(inspect(error, { depth: 10 })).not.toContain(secretId);
  });
});

describe('discard and revoke', () => {
  it('destroy the secret ID', async () => {
    const material = await provider.mint(PARAMS, ctx);
    await provider.discard(PARAMS, material.keyId, ctx);

    expect(vault.secretIdAccessors('deployer')).toEqual([]);
    expect(await loginStatus(secretField(material, 'secret_id').reveal())).toBe(400);
  });

  it('succeed when the secret ID is already gone', async () => {
    const old = await handMadeSecretId();
    await provider.revoke(PARAMS, old.accessor, ctx);
    await provider.revoke(PARAMS, old.accessor, ctx);
    await provider.discard(PARAMS, 'never-existed', ctx);

    expect(vault.count('POST', 'auth/approle/role/deployer/secret-id-accessor/destroy')).toBe(1);
  });

  it('succeed when the role is gone', async () => {
    await provider.revoke({ role: 'deleted-role' }, 'some-accessor', ctx);

    expect(vault.count('POST', /secret-id-accessor/)).toBe(0);
  });

  it('reject an invalid key id', async () => {
    const error = await rejection(provider.revoke(PARAMS, '../../sys/seal', ctx));

    expect(error.code).toBe('INVALID_PARAMETERS');
  });
});

describe('confirm', () => {
  it('reports false while the secret ID exists', async () => {
    const old = await handMadeSecretId();

    expect(await provider.confirm(PARAMS, old.accessor, ctx)).toBe(false);
  });

  it('reports true after revoke', async () => {
    const old = await handMadeSecretId();
    await provider.revoke(PARAMS, old.accessor, ctx);

    expect(await provider.confirm(PARAMS, old.accessor, ctx)).toBe(true);
  });
});
