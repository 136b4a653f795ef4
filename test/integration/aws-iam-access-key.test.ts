import { createServer, type AddressInfo } from 'node:net';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createAwsIamAccessKeyProvider,
  DEFAULT_VERIFY_POLICY,
  type AwsIamAccessKeyProvider,
} from '../../providers/aws-iam-access-key/index.js';
import { RekeyError } from '../../src/errors.js';
import { plainField, secretField, SecretValue, type Material } from '../../src/secret.js';
import {
  accessKeyStatuses,
  adminIamClient,
  callerIdentity,
  createTestUser,
  deleteTestUser,
  stepContext,
  verifyWithinPolicy,
} from '../support/aws.js';
import { motoEnv } from '../support/moto.js';

/** A short verify window, so that a key that never works fails within a test's time. */
const SHORT_VERIFY_ENV = { REKEY_AWS_VERIFY_WINDOW_MS: '1500', REKEY_AWS_VERIFY_INTERVAL_MS: '200' };

const NO_RECORD = { currentKeyId: null, unpromotedKeyIds: [] };

/** Returns a loopback port that was free a moment ago, so that connecting to it is refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error: unknown = await promise.then(() => undefined, (reason: unknown) => reason);
  expect(error).toBeInstanceOf(RekeyError);
  return error as RekeyError;
}

function keyPairOf(material: Material): { accessKeyId: string; secretAccessKey: string } {
  return { accessKeyId: plainField(material, 'accessKeyId'), secretAccessKey: secretField(material, 'secretAccessKey').reveal() };
}

describe('aws-iam-access-key provider', () => {
  let iam: IAMClient;
  let provider: AwsIamAccessKeyProvider;
  const users: string[] = [];

  async function userWithKeys(keyCount: number): Promise<{ userName: string; keyIds: string[] }> {
    const user = await createTestUser(iam, keyCount);
    users.push(user.userName);
    return { userName: user.userName, keyIds: user.keys.map((key) => key.accessKeyId) };
  }

  beforeAll(() => {
    iam = adminIamClient();
    provider = createAwsIamAccessKeyProvider({ ...motoEnv(), ...SHORT_VERIFY_ENV });
  });

  afterEach(async () => {
    for (const userName of users.splice(0)) await deleteTestUser(iam, userName);
  });

  afterAll(async () => {
    await provider.close();
    iam.destroy();
  });

  describe('when the user has one key', () => {
    it('rotates the key end to end', async () => {
      const user = await createTestUser(iam, 1);
      users.push(user.userName);
      const oldKey = user.keys[0]!;
      const params = { userName: user.userName };
      const ctx = stepContext();
      const userArn = new RegExp(`^arn:aws:iam::\\d+:user/${user.userName}$`);
      expect((await callerIdentity(oldKey)).arn).toMatch(userArn);

      const inspection = await provider.inspect(params, NO_RECORD, ctx);
      expect(inspection).toEqual({ currentKeyId: oldKey.accessKeyId, orphanKeyIds: [] });

      const material = await provider.mint(params, ctx);
      expect(material.keyId).toMatch(/^AKIA[A-Z0-9]{16}$/);
      expect(material.keyId).not.toBe(oldKey.accessKeyId);
      expect(plainField(material, 'accessKeyId')).toBe(material.keyId);
      expect(secretField(material, 'secretAccessKey')).toBeInstanceOf(SecretValue);

      const verified = await verifyWithinPolicy(provider, params, material, ctx);
      expect(verified.attempts).toBe(2);
      expect((await callerIdentity(keyPairOf(material))).arn).toMatch(userArn);

      await provider.disable(params, oldKey.accessKeyId, ctx);
      expect(await accessKeyStatuses(iam, user.userName)).toEqual({ [oldKey.accessKeyId]: 'Inactive', [material.keyId]: 'Active' });

      await provider.revoke(params, oldKey.accessKeyId, ctx);
      expect(await accessKeyStatuses(iam, user.userName)).toEqual({ [material.keyId]: 'Active' });
      expect(await callerIdentity(oldKey)).toEqual({ error: 'InvalidClientTokenId' });
      expect((await callerIdentity(keyPairOf(material))).arn).toMatch(userArn);
      expect(await provider.confirm(params, oldKey.accessKeyId, ctx)).toBe(true);
    });

    it('inspect prefers the recorded current key', async () => {
      const { userName, keyIds: [keyId] } = await userWithKeys(1);

      const inspection = await provider.inspect({ userName }, { currentKeyId: keyId!, unpromotedKeyIds: [] }, stepContext());

      expect(inspection).toEqual({ currentKeyId: keyId, orphanKeyIds: [] });
    });

    it('inspect treats an unpromoted only key as orphan', async () => {
      const { userName, keyIds: [keyId] } = await userWithKeys(1);

      const inspection = await provider.inspect({ userName }, { currentKeyId: 'AKIADELETEDELSEWHERE', unpromotedKeyIds: [keyId!] }, stepContext());

      expect(inspection).toEqual({ currentKeyId: null, orphanKeyIds: [keyId] });
    });

    it('disable marks the key inactive', async () => {
      const { userName, keyIds: [keyId] } = await userWithKeys(1);

      await provider.disable({ userName }, keyId!, stepContext());

      expect(await accessKeyStatuses(iam, userName)).toEqual({ [keyId!]: 'Inactive' });
    });

    it('confirm is false while the key exists', async () => {
      const { userName, keyIds: [keyId] } = await userWithKeys(1);

      expect(await provider.confirm({ userName }, keyId!, stepContext())).toBe(false);
    });
  });

  describe('when the user has two keys', () => {
    it('inspect rejects two keys rekey did not mint', async () => {
      const { userName, keyIds } = await userWithKeys(2);

      const error = await rejection(provider.inspect({ userName }, NO_RECORD, stepContext()));

      expect(error.code).toBe('KEY_QUOTA');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain(`IAM user ${userName} already has the maximum of 2 access keys`);
      expect(error.message).toContain(keyIds[0]);
      expect(error.message).toContain(keyIds[1]);
      expect(Object.keys(await accessKeyStatuses(iam, userName)).sort()).toEqual([...keyIds].sort());
    });

    it('inspect marks the recorded key in the quota error', async () => {
      const { userName, keyIds: [recorded, foreign] } = await userWithKeys(2);

      const error = await rejection(provider.inspect({ userName }, { currentKeyId: recorded!, unpromotedKeyIds: [] }, stepContext()));

      expect(error.code).toBe('KEY_QUOTA');
      expect(error.message).toContain(`${recorded} (current), ${foreign}`);
    });

    it('inspect lists a key rekey minted as orphan', async () => {
      const { userName, keyIds: [current, minted] } = await userWithKeys(2);

      const inspection = await provider.inspect({ userName }, { currentKeyId: current!, unpromotedKeyIds: [minted!] }, stepContext());

      expect(inspection).toEqual({ currentKeyId: current, orphanKeyIds: [minted] });
    });

    it('inspect finds the current key without a record', async () => {
      const { userName, keyIds: [current, minted] } = await userWithKeys(2);

      const inspection = await provider.inspect({ userName }, { currentKeyId: null, unpromotedKeyIds: [minted!] }, stepContext());

      expect(inspection).toEqual({ currentKeyId: current, orphanKeyIds: [minted] });
    });

    it('mint maps LimitExceeded to KEY_QUOTA', async () => {
      const { userName, keyIds } = await userWithKeys(2);

      const error = await rejection(provider.mint({ userName }, stepContext()));

      expect(error.code).toBe('KEY_QUOTA');
      expect(error.message).toContain(`IAM user ${userName} already has the maximum of 2 access keys`);
      expect(Object.keys(await accessKeyStatuses(iam, userName)).sort()).toEqual([...keyIds].sort());
    });
  });

  describe('when the key or user is gone', () => {
    it('discard succeeds for a missing key', async () => {
      const { userName, keyIds: [keyId] } = await userWithKeys(1);
      const ctx = stepContext();
      await provider.discard({ userName }, keyId!, ctx);

      await expect(provider.discard({ userName }, keyId!, ctx)).resolves.toBeUndefined();
      expect(await accessKeyStatuses(iam, userName)).toEqual({});
    });

    it('revoke succeeds for a missing key', async () => {
      const { userName } = await userWithKeys(0);

      await expect(provider.revoke({ userName }, 'AKIAALREADYDELETED00', stepContext())).resolves.toBeUndefined();
    });

    it('disable succeeds for a missing key', async () => {
      const { userName } = await userWithKeys(0);

      await expect(provider.disable({ userName }, 'AKIAALREADYDELETED00', stepContext())).resolves.toBeUndefined();
    });

    it('inspect reports a missing user', async () => {
      const error = await rejection(provider.inspect({ userName: 'rekey-test-no-such-user' }, NO_RECORD, stepContext()));

      expect(error.code).toBe('TARGET_NOT_FOUND');
      expect(error.message).toBe('IAM user rekey-test-no-such-user does not exist: check userName in the inventory');
    });

    it('confirm is true for a missing user', async () => {
      expect(await provider.confirm({ userName: 'rekey-test-no-such-user' }, 'AKIAALREADYDELETED00', stepContext())).toBe(true);
    });
  });

  describe('verify', () => {
    it('fails for a deleted key once the window ends', async () => {
      const { userName } = await userWithKeys(0);
      const params = { userName };
      const ctx = stepContext();
      const material = await provider.mint(params, ctx);
      const secret = secretField(material, 'secretAccessKey').reveal();
      await provider.discard(params, material.keyId, ctx);

      const started = Date.now();
      const error = await rejection(verifyWithinPolicy(provider, params, material, ctx));

      expect(Date.now() - started).toBeGreaterThanOrEqual(1_300);
      expect(error.code).toBe('NOT_READY');
      expect(error.retryable).toBe(true);
      expect(error.message).toContain(`STS rejects access key ${material.keyId} of IAM user ${userName} yet`);
      expect(error.message).toContain('InvalidClientTokenId');
      expect(error.message).not.toContain(secret);
    });

    it('rejects a key of another user', async () => {
      const { userName } = await userWithKeys(0);
      const { userName: otherUserName } = await userWithKeys(0);
      const ctx = stepContext();
      const material = await provider.mint({ userName: otherUserName }, ctx);

      const error = await rejection(provider.verify({ userName }, material, ctx));

      expect(error.code).toBe('VERIFY_FAILED');
      expect(error.message).toMatch(new RegExp(`^access key ${material.keyId} signs in as arn:aws:iam::\\d+:user/${otherUserName}, not as IAM user ${userName}$`));
    });
  });

  describe('when rekey lacks permission', () => {
    it('inspect reports PERMISSION_DENIED', async () => {
      const { userName } = await userWithKeys(1);
      const limited = await createTestUser(iam, 1);
      users.push(limited.userName);
      const limitedKey = limited.keys[0]!;
      const limitedProvider = createAwsIamAccessKeyProvider({
        ...motoEnv(),
        REKEY_AWS_ACCESS_KEY_ID: limitedKey.accessKeyId,
        REKEY_AWS_SECRET_ACCESS_KEY: limitedKey.secretAccessKey,
      });

      try {
        const error = await rejection(limitedProvider.inspect({ userName }, NO_RECORD, stepContext()));

        expect(error.code).toBe('PERMISSION_DENIED');
        expect(error.message).toContain(`iam:ListAccessKeys on IAM user ${userName} was denied: AccessDenied`);
        expect(error.message).not.toContain(limitedKey.secretAccessKey);
      } finally {
        await limitedProvider.close();
      }
    });
  });

  describe('factory', () => {
    it('rejects a missing region', () => {
      const { REKEY_AWS_REGION: _region, ...env } = motoEnv();

      expect(() => createAwsIamAccessKeyProvider(env)).toThrow(/^REKEY_AWS_REGION is not set/);
    });

    it('rejects half a key pair', () => {
      const { REKEY_AWS_SECRET_ACCESS_KEY: _secret, ...env } = motoEnv();

      expect(() => createAwsIamAccessKeyProvider(env)).toThrow(/must be set together/);
    });

    it('rejects an invalid verify window', () => {
      expect(() => createAwsIamAccessKeyProvider({ ...motoEnv(), REKEY_AWS_VERIFY_WINDOW_MS: '1.5s' }))
        .toThrow('REKEY_AWS_VERIFY_WINDOW_MS="1.5s" is invalid: expected a positive whole number of milliseconds');
    });

    it('uses the default verify policy', async () => {
      const defaults = createAwsIamAccessKeyProvider(motoEnv());

      expect(defaults.verifyPolicy).toEqual({ windowMs: 120_000, intervalMs: 1_000, consecutiveSuccesses: 2 });
      expect(defaults.verifyPolicy).toEqual(DEFAULT_VERIFY_POLICY);
      await defaults.close();
    });

    it('reads the verify overrides', () => {
      expect(provider.verifyPolicy).toEqual({ windowMs: 1_500, intervalMs: 200, consecutiveSuccesses: 2 });
    });
  });

  describe('when AWS cannot be reached', () => {
    it('inspect reports UNAVAILABLE', async () => {
      const unreachable = createAwsIamAccessKeyProvider({ ...motoEnv(), REKEY_AWS_ENDPOINT: `http://127.0.0.1:${await closedPort()}` });
      try {
        const error = await rejection(unreachable.inspect({ userName: 'rekey-test-any' }, NO_RECORD, stepContext()));

        expect(error.code).toBe('UNAVAILABLE');
        expect(error.retryable).toBe(true);
        expect(error.message).toContain('iam:ListAccessKeys on IAM user rekey-test-any failed');
      } finally {
        await unreachable.close();
      }
    });
  });
});
