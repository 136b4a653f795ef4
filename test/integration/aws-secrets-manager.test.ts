import { randomUUID } from 'node:crypto';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAwsSecretsManagerStore, type AwsSecretsManagerStore } from '../../providers/aws-secrets-manager/index.js';
import type { StagedVersion } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { renderMaterial, SecretValue } from '../../src/secret.js';
import {
  adminIamClient,
  adminSecretsClient,
  createTestUser,
  deleteTestUser,
  secretVersions,
  stepContext,
  uniqueName,
} from '../support/aws.js';
import { motoEnv } from '../support/moto.js';

const ORIGINAL_VALUE = JSON.stringify({ accessKeyId: 'AKIAORIGINAL00000000', secretAccessKey: 'original-secret' });

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error: unknown = await promise.then(() => undefined, (reason: unknown) => reason);
  expect(error).toBeInstanceOf(RekeyError);
  return error as RekeyError;
}

/** Builds the staged version of a fresh access key, as the engine hands it to a store. */
function stagedVersion(rotationId: string): { version: StagedVersion; document: string } {
  const keyId = `AKIA${randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase()}`;
  const value = renderMaterial({ keyId, fields: { accessKeyId: keyId, secretAccessKey: SecretValue.generate(30) } });
  return { version: { rotationId, keyId, value }, document: value.reveal() };
}

describe('aws-secrets-manager store', () => {
  let secrets: SecretsManagerClient;
  let store: AwsSecretsManagerStore;
  const secretIds: string[] = [];

  function newSecretId(): string {
    const secretId = uniqueName('rekey-test/secret');
    secretIds.push(secretId);
    return secretId;
  }

  /** Creates a secret whose only version is current, and returns its id and that version's id. */
  async function secretWithValue(): Promise<{ secretId: string; originalVersionId: string }> {
    const secretId = newSecretId();
    const created = await secrets.send(new CreateSecretCommand({ Name: secretId, SecretString: ORIGINAL_VALUE }));
    return { secretId, originalVersionId: created.VersionId! };
  }

  /**
   * Reads the AWSCURRENT value. The label is named because moto 5.2.5 keeps returning the old
   * version to a GetSecretValue without one after UpdateSecretVersionStage moved AWSCURRENT.
   */
  async function currentValue(secretId: string): Promise<string | undefined> {
    const read = await secrets.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }));
    return read.SecretString;
  }

  beforeAll(() => {
    secrets = adminSecretsClient();
    store = createAwsSecretsManagerStore(motoEnv());
  });

  afterEach(async () => {
    for (const secretId of secretIds.splice(0)) {
      await secrets.send(new DeleteSecretCommand({ SecretId: secretId, ForceDeleteWithoutRecovery: true }));
    }
  });

  afterAll(async () => {
    await store.close();
    secrets.destroy();
  });

  describe('when the secret does not exist', () => {
    it('stage creates a placeholder current version', async () => {
      const secretId = newSecretId();
      const ctx = stepContext();
      const { version } = stagedVersion(ctx.rotationId);

      await store.stage({ secretId }, version, ctx);

      const versions = await secretVersions(secrets, secretId);
      expect(Object.keys(versions)).toHaveLength(2);
      expect(versions[ctx.rotationId]).toEqual(['AWSPENDING', `rekey-key-id:${version.keyId}`]);
      const placeholderId = Object.keys(versions).find((versionId) => versionId !== ctx.rotationId)!;
      expect(versions[placeholderId]).toEqual(['AWSCURRENT']);
      expect(await currentValue(secretId)).toBe('{}');
      const described = await secrets.send(new DescribeSecretCommand({ SecretId: secretId }));
      expect(described.Description).toBe('Created by rekey. Contains an empty JSON object until rekey promotes the first rotation.');
      expect(await store.describe({ secretId }, ctx)).toEqual({ currentKeyId: null, pendingRotationId: ctx.rotationId });
    });

    it('check accepts a missing secret name', async () => {
      await expect(store.check({ secretId: newSecretId() }, stepContext())).resolves.toBeUndefined();
    });

    it('check rejects a missing ARN', async () => {
      const secretId = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:rekey-test-missing-AbCdEf';

      const error = await rejection(store.check({ secretId }, stepContext()));

      expect(error.code).toBe('TARGET_NOT_FOUND');
      expect(error.message).toBe(`secret ${secretId} not found, and rekey can create a missing secret from a name but not from an ARN: create the secret or set secretId to its name`);
    });

    it('readPending returns null', async () => {
      expect(await store.readPending({ secretId: 'rekey-test/never-created' }, randomUUID(), stepContext())).toBeNull();
    });

    it('discard succeeds', async () => {
      await expect(store.discard({ secretId: 'rekey-test/never-created' }, randomUUID(), stepContext())).resolves.toBeUndefined();
    });

    it('describe returns no keys', async () => {
      expect(await store.describe({ secretId: 'rekey-test/never-created' }, stepContext())).toEqual({ currentKeyId: null, pendingRotationId: null });
    });

    it('promote reports MATERIAL_LOST', async () => {
      const rotationId = randomUUID();

      const error = await rejection(store.promote({ secretId: 'rekey-test/never-created' }, rotationId, stepContext()));

      expect(error.code).toBe('MATERIAL_LOST');
      expect(error.message).toBe(`secret rekey-test/never-created has no pending version ${rotationId} to promote: it was never staged or was discarded`);
    });
  });

  describe('when the secret has no value', () => {
    it('stage fills an empty secret with a placeholder', async () => {
      const secretId = newSecretId();
      await secrets.send(new CreateSecretCommand({ Name: secretId }));
      const ctx = stepContext();
      const { version } = stagedVersion(ctx.rotationId);

      await store.stage({ secretId }, version, ctx);

      const versions = await secretVersions(secrets, secretId);
      expect(Object.keys(versions)).toHaveLength(2);
      expect(versions[ctx.rotationId]).toEqual(['AWSPENDING', `rekey-key-id:${version.keyId}`]);
      expect(await currentValue(secretId)).toBe('{}');
    });
  });

  describe('when the secret has a current value', () => {
    it('stage twice creates one version', async () => {
      const { secretId, originalVersionId } = await secretWithValue();
      const ctx = stepContext();
      const { version } = stagedVersion(ctx.rotationId);

      await store.stage({ secretId }, version, ctx);
      await store.stage({ secretId }, version, ctx);

      expect(await secretVersions(secrets, secretId)).toEqual({
        [originalVersionId]: ['AWSCURRENT'],
        [ctx.rotationId]: ['AWSPENDING', `rekey-key-id:${version.keyId}`],
      });
      expect(await currentValue(secretId)).toBe(ORIGINAL_VALUE);
    });

    it('readPending returns the staged value', async () => {
      const { secretId } = await secretWithValue();
      const ctx = stepContext();
      const { version, document } = stagedVersion(ctx.rotationId);
      await store.stage({ secretId }, version, ctx);

      const pending = await store.readPending({ secretId }, ctx.rotationId, ctx);

      expect(pending).toBeInstanceOf(SecretValue);
      expect(pending?.reveal()).toBe(document);
      expect(await store.readPending({ secretId }, randomUUID(), ctx)).toBeNull();
    });

    it('promote makes the rotation current', async () => {
      const { secretId, originalVersionId } = await secretWithValue();
      const ctx = stepContext();
      const { version, document } = stagedVersion(ctx.rotationId);
      await store.stage({ secretId }, version, ctx);

      await store.promote({ secretId }, ctx.rotationId, ctx);
      await store.promote({ secretId }, ctx.rotationId, ctx);

      const versions = await secretVersions(secrets, secretId);
      expect(versions).toEqual({
        [originalVersionId]: ['AWSPREVIOUS'],
        [ctx.rotationId]: ['AWSCURRENT', `rekey-key-id:${version.keyId}`],
      });
      expect(Object.values(versions).filter((labels) => labels.includes('AWSCURRENT'))).toHaveLength(1);
      expect(Object.values(versions).filter((labels) => labels.includes('AWSPENDING'))).toHaveLength(0);
      expect(await currentValue(secretId)).toBe(document);
      expect((await store.readPending({ secretId }, ctx.rotationId, ctx))?.reveal()).toBe(document);
      expect(await store.describe({ secretId }, ctx)).toEqual({ currentKeyId: version.keyId, pendingRotationId: null });
    });

    it('promote keeps one key-id label', async () => {
      const { secretId, originalVersionId } = await secretWithValue();
      const first = stepContext();
      const second = stepContext();
      const { version: firstVersion } = stagedVersion(first.rotationId);
      const { version: secondVersion } = stagedVersion(second.rotationId);
      await store.stage({ secretId }, firstVersion, first);
      await store.promote({ secretId }, first.rotationId, first);

      await store.stage({ secretId }, secondVersion, second);
      await store.promote({ secretId }, second.rotationId, second);

      expect(await secretVersions(secrets, secretId)).toEqual({
        [originalVersionId]: [],
        [first.rotationId]: ['AWSPREVIOUS'],
        [second.rotationId]: ['AWSCURRENT', `rekey-key-id:${secondVersion.keyId}`],
      });
      expect(await store.describe({ secretId }, second)).toEqual({ currentKeyId: secondVersion.keyId, pendingRotationId: null });
    });

    it('discard leaves the current version', async () => {
      const { secretId, originalVersionId } = await secretWithValue();
      const ctx = stepContext();
      const { version } = stagedVersion(ctx.rotationId);
      await store.stage({ secretId }, version, ctx);

      await store.discard({ secretId }, ctx.rotationId, ctx);
      await store.discard({ secretId }, ctx.rotationId, ctx);

      expect(await secretVersions(secrets, secretId)).toEqual({
        [originalVersionId]: ['AWSCURRENT'],
        [ctx.rotationId]: [],
      });
      expect(await currentValue(secretId)).toBe(ORIGINAL_VALUE);
      expect(await store.readPending({ secretId }, ctx.rotationId, ctx)).toBeNull();
      expect(await store.describe({ secretId }, ctx)).toEqual({ currentKeyId: null, pendingRotationId: null });
    });

    it('stage after discard restores the labels', async () => {
      const { secretId, originalVersionId } = await secretWithValue();
      const ctx = stepContext();
      const { version, document } = stagedVersion(ctx.rotationId);
      await store.stage({ secretId }, version, ctx);
      await store.discard({ secretId }, ctx.rotationId, ctx);

      await store.stage({ secretId }, version, ctx);

      expect(await secretVersions(secrets, secretId)).toEqual({
        [originalVersionId]: ['AWSCURRENT'],
        [ctx.rotationId]: ['AWSPENDING', `rekey-key-id:${version.keyId}`],
      });
      expect((await store.readPending({ secretId }, ctx.rotationId, ctx))?.reveal()).toBe(document);
    });

    it('stage moves a pending label off the current version', async () => {
      const secretId = newSecretId();
      await secrets.send(new CreateSecretCommand({ Name: secretId }));
      const leftoverVersionId = randomUUID();
      await secrets.send(new PutSecretValueCommand({
        SecretId: secretId,
        ClientRequestToken: leftoverVersionId,
        SecretString: ORIGINAL_VALUE,
        VersionStages: ['AWSCURRENT', 'AWSPENDING'],
      }));
      const ctx = stepContext();
      const { version } = stagedVersion(ctx.rotationId);

      await store.check({ secretId }, ctx);
      await store.stage({ secretId }, version, ctx);

      expect(await secretVersions(secrets, secretId)).toEqual({
        [leftoverVersionId]: ['AWSCURRENT'],
        [ctx.rotationId]: ['AWSPENDING', `rekey-key-id:${version.keyId}`],
      });
    });

    it('check accepts its own pending version', async () => {
      const { secretId } = await secretWithValue();
      const ctx = stepContext();
      const { version } = stagedVersion(`${ctx.rotationId}-2`);
      await store.stage({ secretId }, version, ctx);

      await expect(store.check({ secretId }, ctx)).resolves.toBeUndefined();
    });
  });

  describe('when another writer left a pending version', () => {
    it('stage reports STORE_CONFLICT', async () => {
      const { secretId, originalVersionId } = await secretWithValue();
      const strayVersionId = randomUUID();
      await secrets.send(new PutSecretValueCommand({
        SecretId: secretId,
        ClientRequestToken: strayVersionId,
        SecretString: '{"written":"by another rotation"}',
        VersionStages: ['AWSPENDING'],
      }));
      const ctx = stepContext();
      const { version } = stagedVersion(ctx.rotationId);

      const error = await rejection(store.stage({ secretId }, version, ctx));

      expect(error.code).toBe('STORE_CONFLICT');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain(`secret ${secretId} has a pending version ${strayVersionId} (label AWSPENDING) from another rotation or writer`);
      expect(await secretVersions(secrets, secretId)).toEqual({
        [originalVersionId]: ['AWSCURRENT'],
        [strayVersionId]: ['AWSPENDING'],
      });
    });

    it('check reports STORE_CONFLICT', async () => {
      const { secretId } = await secretWithValue();
      const strayVersionId = randomUUID();
      await secrets.send(new PutSecretValueCommand({
        SecretId: secretId,
        ClientRequestToken: strayVersionId,
        SecretString: '{"written":"by another rotation"}',
        VersionStages: ['AWSPENDING'],
      }));

      const error = await rejection(store.check({ secretId }, stepContext()));

      expect(error.code).toBe('STORE_CONFLICT');
      expect(error.message).toContain(`pending version ${strayVersionId}`);
    });
  });

  describe('when the input is invalid', () => {
    it('stage rejects a short rotation id', async () => {
      const { secretId } = await secretWithValue();
      const { version } = stagedVersion('rotation-1');

      const error = await rejection(store.stage({ secretId }, version, stepContext()));

      expect(error.code).toBe('INVALID_PARAMETERS');
      expect(error.message).toBe('rotation id "rotation-1" is invalid as a Secrets Manager version id: expected 32 to 64 characters, such as a UUID');
    });

    it('stage rejects a reused rotation id', async () => {
      const { secretId } = await secretWithValue();
      const ctx = stepContext();
      const { version: first } = stagedVersion(ctx.rotationId);
      const { version: second, document } = stagedVersion(ctx.rotationId);
      await store.stage({ secretId }, first, ctx);
      await store.discard({ secretId }, ctx.rotationId, ctx);

      const error = await rejection(store.stage({ secretId }, second, ctx));

      expect(error.code).toBe('STORE_CONFLICT');
      expect(error.message).toContain(`secret ${secretId} already has a version ${ctx.rotationId} with another value`);
      expect(error.message).not.toContain(JSON.parse(document).secretAccessKey as string);
    });
  });

  describe('when the secret is scheduled for deletion', () => {
    it('check reports PRECONDITION_FAILED', async () => {
      const secretId = uniqueName('rekey-test/secret');
      await secrets.send(new CreateSecretCommand({ Name: secretId, SecretString: ORIGINAL_VALUE }));
      await secrets.send(new DeleteSecretCommand({ SecretId: secretId, RecoveryWindowInDays: 7 }));

      const error = await rejection(store.check({ secretId }, stepContext()));

      expect(error.code).toBe('PRECONDITION_FAILED');
      expect(error.message).toBe(`secret ${secretId} is scheduled for deletion: restore it with RestoreSecret or point the inventory at another secret`);
      await secrets.send(new DeleteSecretCommand({ SecretId: secretId, ForceDeleteWithoutRecovery: true }));
    });
  });

  describe('when rekey lacks permission', () => {
    let iam: IAMClient;
    let userName: string | undefined;

    beforeAll(() => {
      iam = adminIamClient();
    });

    afterAll(async () => {
      if (userName !== undefined) await deleteTestUser(iam, userName);
      iam.destroy();
    });

    // moto returns an XML error for a denied Secrets Manager call, which the JSON client cannot
    // parse, so this covers the mapping by HTTP status 403 rather than by AccessDeniedException.
    it('check reports PERMISSION_DENIED', async () => {
      const { secretId } = await secretWithValue();
      const limited = await createTestUser(iam, 1);
      userName = limited.userName;
      const limitedKey = limited.keys[0]!;
      const limitedStore = createAwsSecretsManagerStore({
        ...motoEnv(),
        REKEY_AWS_ACCESS_KEY_ID: limitedKey.accessKeyId,
        REKEY_AWS_SECRET_ACCESS_KEY: limitedKey.secretAccessKey,
      });

      try {
        const error = await rejection(limitedStore.check({ secretId }, stepContext()));

        expect(error.code).toBe('PERMISSION_DENIED');
        expect(error.message).toContain(`secretsmanager:DescribeSecret on secret ${secretId} was denied`);
        expect(error.message).toContain("Allow secretsmanager:DescribeSecret for rekey's AWS identity");
      } finally {
        await limitedStore.close();
      }
    });
  });
});
