import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KnownKeys, StepContext } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { SecretValue, secretField, type Material } from '../../src/secret.js';
import {
  addPasswordArguments, createRedisAclPasswordProvider, keyIdOfHash, removePasswordArguments,
  type RedisAclPasswordProvider,
} from '../../providers/redis-acl-password/index.js';
import {
  AclFileRedis, REDIS_ADMIN_URL, aclPasswordHashes, createAclUser, deleteAclUser, tryAuth, uniqueUserName,
} from '../support/redis.js';
import { testKeyDigest } from '../support/context.js';

const ENV = { REKEY_REDIS_ACL_URL: REDIS_ADMIN_URL };
const NOTHING_KNOWN: KnownKeys = { currentKeyId: null, unpromotedKeyIds: [] };

function context(): StepContext {
  return {
    runId: 'run-1', rotationId: `rot-${randomBytes(4).toString('hex')}`, environment: 'test', credentialId: 'cache-app',
    mode: 'scheduled', logger: silentLogger(), signal: new AbortController().signal, keyDigest: testKeyDigest,
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function keyIdOf(password: string): string {
  return `acl:${testKeyDigest(sha256(password)).slice(0, 16)}`;
}

function passwordOf(material: Material): string {
  return secretField(material, 'password').reveal();
}

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RekeyError);
  return error as RekeyError;
}

const providers: RedisAclPasswordProvider[] = [];
const users: string[] = [];
const clients: Redis[] = [];

function newProvider(env: Record<string, string> = ENV): RedisAclPasswordProvider {
  const provider = createRedisAclPasswordProvider(env);
  providers.push(provider);
  return provider;
}

/** Creates an ACL user on the shared Redis, deleted after the test. */
async function aclUser(passwords: string[], flags?: string[]): Promise<string> {
  const user = uniqueUserName();
  users.push(user);
  await createAclUser(REDIS_ADMIN_URL, user, passwords, flags);
  return user;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await Promise.all(providers.splice(0).map((provider) => provider.close()));
  await Promise.all(users.splice(0).map((user) => deleteAclUser(REDIS_ADMIN_URL, user)));
});

describe('generate', () => {
  it('derives the key id from the password hash', () => {
    const provider = newProvider();
    const material = provider.generate({ user: 'app' }, context());

    expect(material.keyId).toBe(keyIdOf(passwordOf(material)));
    expect(material.fields.username).toBe('app');
    expect(passwordOf(material)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('ACL SETUSER arguments', () => {
  it('carry the hash and never the plaintext', () => {
    const password = SecretValue.fromString('plain-text-password');

    expect(addPasswordArguments('app', password)).toEqual(['SETUSER', 'app', `#${sha256('plain-text-password')}`]);
    expect(addPasswordArguments('app', password).join(' ')).not.toContain('plain-text-password');
    expect(removePasswordArguments('app', sha256('x'))).toEqual(['SETUSER', 'app', `!${sha256('x')}`]);
  });

  it('key id matches ACL GETUSER hash', () => {
    expect(keyIdOfHash(sha256('pw'), context())).toBe(keyIdOf('pw'));
  });
});

describe('when a rotation succeeds', () => {
  it('accepts both passwords until revoke', async () => {
    const user = await aclUser(['old-password-1']);
    const provider = newProvider();
    const params = { user };
    const ctx = context();
    const before = await provider.inspect(params, NOTHING_KNOWN, ctx);
    expect(before).toEqual({ currentKeyId: keyIdOf('old-password-1'), orphanKeyIds: [], otherKeyIds: [] });

    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);
    expect(await tryAuth(REDIS_ADMIN_URL, user, 'old-password-1')).toBe('OK');
    expect(await tryAuth(REDIS_ADMIN_URL, user, passwordOf(material))).toBe('OK');
    await provider.verify(params, material, ctx);

    await provider.revoke(params, keyIdOf('old-password-1'), ctx);
    expect(await tryAuth(REDIS_ADMIN_URL, user, 'old-password-1')).toBe('WRONGPASS');
    expect(await tryAuth(REDIS_ADMIN_URL, user, passwordOf(material))).toBe('OK');
    expect(await aclPasswordHashes(REDIS_ADMIN_URL, user)).toEqual([sha256(passwordOf(material))]);
    expect(await provider.confirm(params, keyIdOf('old-password-1'), ctx)).toBe(true);

    const known: KnownKeys = { currentKeyId: material.keyId, unpromotedKeyIds: [] };
    expect(await provider.inspect(params, known, ctx)).toEqual({ currentKeyId: material.keyId, orphanKeyIds: [], otherKeyIds: [] });
  });

  it('keeps a connected client working', async () => {
    const user = await aclUser(['old-password-2']);
    const provider = newProvider();
    const params = { user };
    const ctx = context();
    const consumer = new Redis(REDIS_ADMIN_URL, { username: user, password: 'old-password-2', protocol: 2, disableClientInfo: true, enableReadyCheck: false });
    clients.push(consumer);
    let closes = 0;
    consumer.on('close', () => { closes += 1; });
    const clientId = await consumer.call('CLIENT', 'ID');

    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);
    expect(await consumer.ping()).toBe('PONG');

    await provider.revoke(params, keyIdOf('old-password-2'), ctx);
    expect(await consumer.ping()).toBe('PONG');
    expect(await consumer.call('CLIENT', 'ID')).toBe(clientId);
    expect(closes).toBe(0);
  });

  it('applies the same material twice', async () => {
    const user = await aclUser(['old-password-3']);
    const provider = newProvider();
    const params = { user };
    const ctx = context();
    const material = provider.generate(params, ctx);

    await provider.apply(params, material, ctx);
    await provider.apply(params, material, ctx);

    expect(await aclPasswordHashes(REDIS_ADMIN_URL, user)).toEqual([sha256('old-password-3'), sha256(passwordOf(material))].sort());
  });

  it('revoke of a removed password succeeds', async () => {
    const user = await aclUser(['old-password-4']);
    const provider = newProvider();
    const params = { user };
    const ctx = context();
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);

    await provider.revoke(params, keyIdOf('old-password-4'), ctx);
    await provider.revoke(params, keyIdOf('old-password-4'), ctx);

    expect(await aclPasswordHashes(REDIS_ADMIN_URL, user)).toEqual([sha256(passwordOf(material))]);
  });

  it('confirm is false before revoke', async () => {
    const user = await aclUser(['old-password-5']);
    const provider = newProvider();

    expect(await provider.confirm({ user }, keyIdOf('old-password-5'), context())).toBe(false);
  });
});

describe('when verify fails', () => {
  it('rejects a wrong password with VERIFY_FAILED', async () => {
    const user = await aclUser(['old-password-6']);
    const provider = newProvider();
    const wrong: Material = { keyId: keyIdOf('wrong-password'), fields: { username: user, password: SecretValue.fromString('wrong-password') } };

    const error = await rejection(provider.verify({ user }, wrong, context()));

    expect(error.code).toBe('VERIFY_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`"${user}"`);
    expect(error.message).not.toContain('wrong-password');
  });

  it('discard removes only the new password', async () => {
    const user = await aclUser(['old-password-7']);
    const provider = newProvider();
    const params = { user };
    const ctx = context();
    const material = provider.generate(params, ctx);
    await provider.apply(params, material, ctx);

    await provider.discard(params, material.keyId, ctx);

    expect(await aclPasswordHashes(REDIS_ADMIN_URL, user)).toEqual([sha256('old-password-7')]);
    expect(await tryAuth(REDIS_ADMIN_URL, user, 'old-password-7')).toBe('OK');
    expect(await tryAuth(REDIS_ADMIN_URL, user, passwordOf(material))).toBe('WRONGPASS');
  });
});

describe('inspect', () => {
  it('rejects a missing user with TARGET_NOT_FOUND', async () => {
    const provider = newProvider();

    const error = await rejection(provider.inspect({ user: 'rekey_t_missing_user' }, NOTHING_KNOWN, context()));

    expect(error.code).toBe('TARGET_NOT_FOUND');
    expect(error.message).toBe('Redis ACL user "rekey_t_missing_user" does not exist');
  });

  it('rejects a disabled user', async () => {
    const user = await aclUser(['old-password-8'], ['off']);
    const provider = newProvider();

    const error = await rejection(provider.inspect({ user }, NOTHING_KNOWN, context()));

    expect(error.code).toBe('PRECONDITION_FAILED');
  });

  it('returns no key for a nopass user', async () => {
    const user = await aclUser([]);
    const provider = newProvider();

    expect(await provider.inspect({ user }, NOTHING_KNOWN, context())).toEqual({ currentKeyId: null, orphanKeyIds: [], otherKeyIds: [] });
  });

  it('lists unpromoted passwords as orphans', async () => {
    const user = await aclUser(['current-password', 'orphan-password', 'foreign-password']);
    const provider = newProvider();
    const known: KnownKeys = {
      currentKeyId: keyIdOf('current-password'),
      unpromotedKeyIds: [keyIdOf('orphan-password'), keyIdOf('password-already-gone')],
    };

    const inspection = await provider.inspect({ user }, known, context());

    expect(inspection).toEqual({
      currentKeyId: keyIdOf('current-password'), orphanKeyIds: [keyIdOf('orphan-password')], otherKeyIds: [keyIdOf('foreign-password')],
    });
  });

  it('skips unpromoted keys for current', async () => {
    const user = await aclUser(['first-password', 'orphan-password']);
    const provider = newProvider();
    const known: KnownKeys = { currentKeyId: null, unpromotedKeyIds: [keyIdOf('orphan-password')] };

    const inspection = await provider.inspect({ user }, known, context());

    expect(inspection).toEqual({ currentKeyId: keyIdOf('first-password'), orphanKeyIds: [keyIdOf('orphan-password')], otherKeyIds: [] });
  });

  it('rejects several passwords of unknown standing', async () => {
    const user = await aclUser(['first-password', 'second-password']);
    const provider = newProvider();

    const error = await rejection(provider.inspect({ user }, NOTHING_KNOWN, context()));

    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.message).toContain(keyIdOf('first-password'));
    expect(error.message).toContain(keyIdOf('second-password'));
  });
});

describe('errors', () => {
  it('apply to a missing user does not create it', async () => {
    const user = uniqueUserName();
    const provider = newProvider();
    const material = provider.generate({ user }, context());

    const error = await rejection(provider.apply({ user }, material, context()));

    expect(error.code).toBe('TARGET_NOT_FOUND');
    expect(await aclPasswordHashes(REDIS_ADMIN_URL, user)).toBeNull();
  });

  it('rejects a missing admin URL variable', async () => {
    const provider = newProvider({});

    const error = await rejection(provider.inspect({ user: 'app' }, NOTHING_KNOWN, context()));

    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.message).toContain('REKEY_REDIS_ACL_URL is not set');
  });

  it('rejects a malformed key id', async () => {
    const user = await aclUser(['old-password-9']);
    const provider = newProvider();

    const error = await rejection(provider.revoke({ user }, 'scram:0011', context()));

    expect(error.code).toBe('INVALID_PARAMETERS');
  });

  it('rejects material whose key id does not match', async () => {
    const user = await aclUser(['old-password-10']);
    const provider = newProvider();
    const material: Material = { keyId: keyIdOf('other'), fields: { username: user, password: SecretValue.fromString('mine') } };

    const error = await rejection(provider.apply({ user }, material, context()));

    expect(error.code).toBe('INVALID_PARAMETERS');
    expect(await aclPasswordHashes(REDIS_ADMIN_URL, user)).toEqual([sha256('old-password-10')]);
  });
});

describe('when the server uses an ACL file', () => {
  let server: AclFileRedis;

  beforeAll(async () => {
    server = await AclFileRedis.start();
  });

  afterAll(async () => {
    await server.stop();
  });

  it('keeps the rotation across a restart', async () => {
    const user = uniqueUserName();
    await createAclUser(server.url, user, ['old-password-11']);
    const provider = newProvider({ REKEY_REDIS_ACL_URL: server.url });
    const params = { user };
    const ctx = context();
    const material = provider.generate(params, ctx);

    await provider.apply(params, material, ctx);
    expect(readFileSync(server.aclFile, 'utf8')).toContain(`#${sha256(passwordOf(material))}`);

    await provider.revoke(params, keyIdOf('old-password-11'), ctx);
    expect(readFileSync(server.aclFile, 'utf8')).not.toContain(sha256('old-password-11'));

    await provider.close();
    await server.restart();
    expect(await tryAuth(server.url, user, passwordOf(material))).toBe('OK');
    expect(await tryAuth(server.url, user, 'old-password-11')).toBe('WRONGPASS');
  });

  it('saves without CONFIG permission', async () => {
    const admin = uniqueUserName();
    await createAclUser(server.url, admin, ['admin-password'], ['on', '+acl']);
    const user = uniqueUserName();
    await createAclUser(server.url, user, ['old-password-12']);
    const provider = newProvider({ REKEY_REDIS_ACL_URL: `redis://${admin}:admin-password@127.0.0.1:${server.port}` });
    const material = provider.generate({ user }, context());

    await provider.apply({ user }, material, context());

    expect(readFileSync(server.aclFile, 'utf8')).toContain(`#${sha256(passwordOf(material))}`);
  });
});

describe('when the admin user may not run CONFIG', () => {
  it('applies on a server without ACL file', async () => {
    const admin = await aclUser(['admin-password'], ['on', '+acl']);
    const user = await aclUser(['old-password-13']);
    const adminUrl = new URL(REDIS_ADMIN_URL);
    adminUrl.username = admin;
    adminUrl.password = 'admin-password';
    const provider = newProvider({ REKEY_REDIS_ACL_URL: adminUrl.toString() });
    const material = provider.generate({ user }, context());

    await provider.apply({ user }, material, context());

    expect(await tryAuth(REDIS_ADMIN_URL, user, passwordOf(material))).toBe('OK');
  });
});
