import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KnownKeys, StepContext } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { SecretValue, secretField, type Material } from '../../src/secret.js';
import {
  alterRolePasswordStatement, buildScramVerifier, createPostgresRolePasswordProvider, keyIdOfVerifier, scramSalt,
  type PostgresRolePasswordParams, type PostgresRolePasswordProvider,
} from '../../providers/postgres-role-password/index.js';
import {
  POSTGRES_ADMIN_URL, POSTGRES_HOST, POSTGRES_PORT, createRole, dropRole, ensurePasswordLogin, storedPassword, tryLogin,
  uniqueRoleName, withAdmin,
} from '../support/postgres.js';
import { testKeyDigest } from '../support/context.js';

const ENV = { REKEY_POSTGRES_URL: POSTGRES_ADMIN_URL };
const NOTHING_KNOWN: KnownKeys = { currentKeyId: null, unpromotedKeyIds: [] };

function context(rotationId = `rot-${randomBytes(4).toString('hex')}`): StepContext {
  return {
    runId: 'run-1', rotationId, environment: 'test', credentialId: 'db-app', mode: 'scheduled',
    logger: silentLogger(), signal: new AbortController().signal, keyDigest: testKeyDigest,
  };
}

function paramsFor(role: string): PostgresRolePasswordParams {
  return { role, host: POSTGRES_HOST, port: POSTGRES_PORT, database: 'postgres' };
}

function passwordOf(material: Material): string {
  return secretField(material, 'password').reveal();
}

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RekeyError);
  return error as RekeyError;
}

const providers: PostgresRolePasswordProvider[] = [];
const roles: string[] = [];

function newProvider(env: Record<string, string> = ENV): PostgresRolePasswordProvider {
  const provider = createPostgresRolePasswordProvider(env);
  providers.push(provider);
  return provider;
}

/** Creates a role whose logins must present `password`, dropped after the test. */
async function checkedRole(password = 'old-password-1'): Promise<string> {
  const role = uniqueRoleName();
  roles.push(role);
  await createRole(role, password);
  return role;
}

beforeAll(async () => {
  await ensurePasswordLogin();
});

afterEach(async () => {
  await Promise.all(providers.splice(0).map((provider) => provider.close()));
  await Promise.all(roles.splice(0).map((role) => dropRole(role)));
});

afterAll(async () => {
  await Promise.all(roles.map((role) => dropRole(role)));
});

describe('SCRAM verifier', () => {
  it('matches the verifier PostgreSQL builds', async () => {
    const role = await checkedRole('pencil-and-paper');
    const serverVerifier = await storedPassword(role);
    expect(serverVerifier).toMatch(/^SCRAM-SHA-256\$4096:/);

    const salt = scramSalt(serverVerifier as string);
    expect(salt).not.toBeNull();
    expect(buildScramVerifier(SecretValue.fromString('pencil-and-paper'), salt as Buffer)).toBe(serverVerifier);
  });

  it('derives the key id from the salt', async () => {
    const salt = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const verifier = buildScramVerifier(SecretValue.fromString('secret'), salt);

    expect(await keyIdOfVerifier(verifier)).toBe('scram:00112233445566778899aabbccddeeff');
    expect(await keyIdOfVerifier(null)).toBeNull();
  });

  it('gives an MD5 hash a stretched key id', async () => {
    const md5 = `md5${createHash('md5').update('secretapp').digest('hex')}`;
    const keyId = await keyIdOfVerifier(md5);

    expect(keyId).toMatch(/^md5:[0-9a-f]{16}$/);
    expect(keyId).not.toContain(md5.slice(3, 19));
    expect(await keyIdOfVerifier(md5)).toBe(keyId);
  });
});

describe('ALTER ROLE statement', () => {
  it('carries the verifier and never the plaintext', () => {
    const password = SecretValue.fromString('plain-text-password');
    const salt = Buffer.alloc(16, 7);
    const verifier = buildScramVerifier(password, salt);
    const statement = alterRolePasswordStatement('app', verifier);

    expect(statement).toBe(`ALTER ROLE "app" PASSWORD '${verifier}'`);
    expect(statement).not.toContain('plain-text-password');
    expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:BwcHBwcHBwcHBwcHBwcHBw==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  });

  it('quotes the role name', () => {
    expect(alterRolePasswordStatement('we"ird role', null)).toBe('ALTER ROLE "we""ird role" PASSWORD NULL');
  });

  it('rejects a plaintext password', () => {
    expect(() => alterRolePasswordStatement('app', 'plain-text-password')).toThrow(TypeError);
  });
});

describe('generate', () => {
  it('returns a random password and a salt key id', () => {
    const provider = newProvider();
    const first = provider.generate(paramsFor('app'), context());
    const second = provider.generate(paramsFor('app'), context());

    expect(first.keyId).toMatch(/^scram:[0-9a-f]{32}$/);
    expect(first.fields.username).toBe('app');
    expect(passwordOf(first)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(second.keyId).not.toBe(first.keyId);
    expect(passwordOf(second)).not.toBe(passwordOf(first));
  });
});

describe('when a rotation succeeds', () => {
  it('lets only the new password log in', async () => {
    const role = await checkedRole('old-password-1');
    const provider = newProvider();
    const params = paramsFor(role);
    const ctx = context();
    const before = await provider.inspect(params, NOTHING_KNOWN, ctx);
    const oldKeyId = await keyIdOfVerifier((await storedPassword(role)) ?? null);
    expect(before).toEqual({ currentKeyId: oldKeyId, orphanKeyIds: [] });

    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);
    await provider.verify(params, material, ctx);

    expect(await tryLogin(role, passwordOf(material))).toBe('ok');
    expect(await tryLogin(role, 'old-password-1')).toBe('28P01');

    await provider.revoke(params, before.currentKeyId as string, ctx);
    expect(await provider.confirm(params, before.currentKeyId as string, ctx)).toBe(true);
    expect(await tryLogin(role, passwordOf(material))).toBe('ok');
    expect(await provider.inspect(params, NOTHING_KNOWN, ctx)).toEqual({ currentKeyId: material.keyId, orphanKeyIds: [] });
  });

  it('stores the verifier built from the material', async () => {
    const role = await checkedRole();
    const provider = newProvider();
    const params = paramsFor(role);
    const ctx = context();
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);

    const salt = Buffer.from(material.keyId.slice('scram:'.length), 'hex');
    const stored = await storedPassword(role);
    expect(stored).toBe(buildScramVerifier(secretField(material, 'password'), salt));
    expect(stored).not.toContain(passwordOf(material));
  });

  it('applies the same material twice', async () => {
    const role = await checkedRole();
    const provider = newProvider();
    const params = paramsFor(role);
    const ctx = context();
    const material = provider.generate(params, ctx);

    await provider.apply(params, material, ctx);
    const first = await storedPassword(role);
    await provider.apply(params, material, ctx);

    expect(await storedPassword(role)).toBe(first);
    expect(await tryLogin(role, passwordOf(material))).toBe('ok');
  });

  it('confirm is false while the old password is current', async () => {
    const role = await checkedRole();
    const provider = newProvider();
    const params = paramsFor(role);
    const { currentKeyId } = await provider.inspect(params, NOTHING_KNOWN, context());

    expect(await provider.confirm(params, currentKeyId as string, context())).toBe(false);
  });
});

describe('when verify fails', () => {
  it('rejects a wrong password with VERIFY_FAILED', async () => {
    const role = await checkedRole();
    const provider = newProvider();
    const params = paramsFor(role);
    const ctx = context();
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);

    const wrong: Material = { keyId: material.keyId, fields: { username: role, password: SecretValue.fromString('wrong-password') } };
    const error = await rejection(provider.verify(params, wrong, ctx));

    expect(error.code).toBe('VERIFY_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`"${role}"`);
    expect(error.message).not.toContain('wrong-password');
  });

  it('reports a wrong password through another host as NOT_READY', async () => {
    const role = await checkedRole();
    const provider = newProvider();
    // The admin URL names 127.0.0.1, so "localhost" counts as another server, such as a replica.
    const params = { ...paramsFor(role), host: 'localhost' };
    const ctx = context();
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);

    const wrong: Material = { keyId: material.keyId, fields: { username: role, password: SecretValue.fromString('wrong-password') } };
    const error = await rejection(provider.verify(params, wrong, ctx));

    expect(error.code).toBe('NOT_READY');
    expect(error.retryable).toBe(true);
    await provider.verify(params, material, ctx);
  });

  it('discard restores the old password', async () => {
    const role = await checkedRole('old-password-2');
    const provider = newProvider();
    const params = paramsFor(role);
    const ctx = context();
    const { currentKeyId } = await provider.inspect(params, NOTHING_KNOWN, ctx);
    const oldVerifier = await storedPassword(role);
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);
    expect(await tryLogin(role, 'old-password-2')).toBe('28P01');

    await provider.discard(params, material.keyId, ctx);

    expect(await storedPassword(role)).toBe(oldVerifier);
    expect(await tryLogin(role, 'old-password-2')).toBe('ok');
    expect(await tryLogin(role, passwordOf(material))).toBe('28P01');
    expect(await provider.inspect(params, NOTHING_KNOWN, ctx)).toEqual({ currentKeyId, orphanKeyIds: [] });
  });

  it('discard twice restores once', async () => {
    const role = await checkedRole('old-password-3');
    const provider = newProvider();
    const params = paramsFor(role);
    const ctx = context();
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);

    await provider.discard(params, material.keyId, ctx);
    await provider.discard(params, material.keyId, ctx);

    expect(await tryLogin(role, 'old-password-3')).toBe('ok');
  });

  it('discard restores a role that had no password', async () => {
    const role = await checkedRole();
    await removePassword(role);
    const provider = newProvider();
    const params = paramsFor(role);
    const ctx = context();
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);

    await provider.discard(params, material.keyId, ctx);

    expect(await storedPassword(role)).toBeNull();
  });

  it('discard without the remembered verifier fails', async () => {
    const role = await checkedRole();
    const params = paramsFor(role);
    const ctx = context();
    const applying = newProvider();
    const material = applying.generate(params, ctx);
    await applying.apply(params, material, ctx);
    const restarted = newProvider();

    const error = await rejection(restarted.discard(params, material.keyId, ctx));

    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`"${role}"`);
    expect(error.message).toContain(material.keyId);
    expect(await tryLogin(role, passwordOf(material))).toBe('ok');
  });

  it('discard after a retried apply fails', async () => {
    const role = await checkedRole();
    const params = paramsFor(role);
    const ctx = context();
    const first = newProvider();
    const material = first.generate(params, ctx);
    await first.apply(params, material, ctx);
    const restarted = newProvider();
    await restarted.apply(params, material, ctx);

    const error = await rejection(restarted.discard(params, material.keyId, ctx));

    expect(error.code).toBe('PRECONDITION_FAILED');
  });

  it('discard of a replacement that is not current changes nothing', async () => {
    const role = await checkedRole('old-password-4');
    const provider = newProvider();
    const params = paramsFor(role);
    const before = await storedPassword(role);

    await provider.discard(params, `scram:${'ab'.repeat(16)}`, context());

    expect(await storedPassword(role)).toBe(before);
    expect(await tryLogin(role, 'old-password-4')).toBe('ok');
  });
});

describe('when the server does not ask for a password', () => {
  it('verify fails for a login under a trust rule', async () => {
    const role = uniqueRoleName();
    roles.push(role);
    await createRole(role, 'old-password-5', { checked: false });
    const provider = newProvider();
    const params = paramsFor(role);
    const ctx = context();
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);

    const error = await rejection(provider.verify(params, material, ctx));

    expect(error.code).toBe('VERIFY_FAILED');
    expect(error.message).toContain('without asking for a password');
  });
});

describe('inspect', () => {
  it('rejects a missing role with TARGET_NOT_FOUND', async () => {
    const provider = newProvider();

    const error = await rejection(provider.inspect(paramsFor('rekey_t_missing_role'), NOTHING_KNOWN, context()));

    expect(error.code).toBe('TARGET_NOT_FOUND');
    expect(error.message).toBe('PostgreSQL role "rekey_t_missing_role" does not exist');
  });

  it('rejects a role without LOGIN', async () => {
    const role = uniqueRoleName();
    roles.push(role);
    await createRole(role, 'old-password-6', { login: false });
    const provider = newProvider();

    const error = await rejection(provider.inspect(paramsFor(role), NOTHING_KNOWN, context()));

    expect(error.code).toBe('PRECONDITION_FAILED');
  });

  it('returns no key for a role without password', async () => {
    const role = await checkedRole();
    await removePassword(role);
    const provider = newProvider();

    expect(await provider.inspect(paramsFor(role), NOTHING_KNOWN, context())).toEqual({ currentKeyId: null, orphanKeyIds: [] });
  });
});

describe('revoke', () => {
  it('succeeds again after the old password is gone', async () => {
    const role = await checkedRole();
    const provider = newProvider();
    const params = paramsFor(role);
    const ctx = context();
    const { currentKeyId } = await provider.inspect(params, NOTHING_KNOWN, ctx);
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);

    await provider.revoke(params, currentKeyId as string, ctx);
    await provider.revoke(params, currentKeyId as string, ctx);

    expect(await tryLogin(role, passwordOf(material))).toBe('ok');
  });

  it('removes the password when revoking first', async () => {
    const role = await checkedRole('old-password-7');
    const provider = newProvider();
    const params = paramsFor(role);
    const { currentKeyId } = await provider.inspect(params, NOTHING_KNOWN, context());

    await provider.revoke(params, currentKeyId as string, context());

    expect(await storedPassword(role)).toBeNull();
    expect(await tryLogin(role, 'old-password-7')).toBe('28P01');
    expect(await provider.confirm(params, currentKeyId as string, context())).toBe(true);
  });
});

describe('errors', () => {
  it('apply to a missing role throws TARGET_NOT_FOUND', async () => {
    const provider = newProvider();
    const params = paramsFor('rekey_t_missing_role');
    const material = provider.generate(params, context());

    const error = await rejection(provider.apply(params, material, context()));

    expect(error.code).toBe('TARGET_NOT_FOUND');
    expect(error.message).not.toContain(passwordOf(material));
  });

  it('rejects a missing admin URL variable', async () => {
    const provider = newProvider({});

    const error = await rejection(provider.inspect(paramsFor('app'), NOTHING_KNOWN, context()));

    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.message).toContain('REKEY_POSTGRES_URL is not set');
  });

  it('reads the admin URL from adminUrlEnv', async () => {
    const role = await checkedRole();
    const provider = newProvider({ OTHER_ADMIN_URL: POSTGRES_ADMIN_URL });
    const params = { ...paramsFor(role), adminUrlEnv: 'OTHER_ADMIN_URL' };

    const inspection = await provider.inspect(params, NOTHING_KNOWN, context());

    expect(inspection.currentKeyId).toMatch(/^scram:[0-9a-f]{32}$/);
  });

  it('rejects material with a foreign key id', async () => {
    const role = await checkedRole();
    const provider = newProvider();
    const material: Material = { keyId: 'sha256:0011223344556677', fields: { username: role, password: SecretValue.fromString('x') } };

    const error = await rejection(provider.apply(paramsFor(role), material, context()));

    expect(error.code).toBe('INVALID_PARAMETERS');
  });
});

/** Removes a role's password directly, as an operator would. */
async function removePassword(role: string): Promise<void> {
  await withAdmin(async (admin) => {
    await admin.query(alterRolePasswordStatement(role, null));
  });
}
