import { randomBytes, randomUUID } from 'node:crypto';
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  DeleteAccessKeyCommand,
  DeleteUserCommand,
  IAMClient,
  ListAccessKeysCommand,
} from '@aws-sdk/client-iam';
import { ListSecretVersionIdsCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { CredentialProvider, StepContext } from '../../src/contracts.js';
import { isRekeyError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import type { Material } from '../../src/secret.js';
import { testKeyDigest } from './context.js';
import { MOTO_REGION, MOTO_URL, motoAdmin, type AwsKeyPair } from './moto.js';

/** Returns `prefix` with a random suffix, so that tests sharing one moto never meet. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** Builds the context a step receives, with a fresh rotation id (a UUID) and a silent logger. */
export function stepContext(overrides: Partial<StepContext> = {}): StepContext {
  return {
    runId: randomUUID(),
    rotationId: randomUUID(),
    environment: 'test',
    credentialId: uniqueName('credential'),
    mode: 'scheduled',
    logger: silentLogger(),
    signal: new AbortController().signal,
    keyDigest: testKeyDigest,
    ...overrides,
  };
}

/** Creates an IAM client that signs with this test run's admin key and calls moto. */
export function adminIamClient(): IAMClient {
  return new IAMClient({ endpoint: MOTO_URL, region: MOTO_REGION, credentials: motoAdmin() });
}

/** Creates a Secrets Manager client that signs with this test run's admin key and calls moto. */
export function adminSecretsClient(): SecretsManagerClient {
  return new SecretsManagerClient({ endpoint: MOTO_URL, region: MOTO_REGION, credentials: motoAdmin() });
}

/** Creates an IAM user without policies and with `keyCount` access keys. */
export async function createTestUser(iam: IAMClient, keyCount: number): Promise<{ userName: string; keys: AwsKeyPair[] }> {
  const userName = uniqueName('rekey-test');
  await iam.send(new CreateUserCommand({ UserName: userName }));

  const keys: AwsKeyPair[] = [];
  for (let index = 0; index < keyCount; index += 1) {
    const created = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
    const key = created.AccessKey;
    if (key?.AccessKeyId === undefined || key.SecretAccessKey === undefined) {
      throw new Error(`moto returned no access key for ${userName}`);
    }
    keys.push({ accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey });
  }
  return { userName, keys };
}

/** Lists a user's access keys as `{ id: status }`, through the admin identity. */
export async function accessKeyStatuses(iam: IAMClient, userName: string): Promise<Record<string, string | undefined>> {
  const listed = await iam.send(new ListAccessKeysCommand({ UserName: userName }));
  return Object.fromEntries((listed.AccessKeyMetadata ?? []).map((key) => [key.AccessKeyId, key.Status]));
}

/** Deletes a test user and its access keys. */
export async function deleteTestUser(iam: IAMClient, userName: string): Promise<void> {
  const listed = await iam.send(new ListAccessKeysCommand({ UserName: userName }));
  for (const key of listed.AccessKeyMetadata ?? []) {
    await iam.send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: key.AccessKeyId }));
  }
  await iam.send(new DeleteUserCommand({ UserName: userName }));
}

/** Calls STS GetCallerIdentity signed by `key` and returns the ARN, or the error name when STS rejects the key. */
export async function callerIdentity(key: AwsKeyPair): Promise<{ arn?: string; error?: string }> {
  const sts = new STSClient({ endpoint: MOTO_URL, region: MOTO_REGION, credentials: key, maxAttempts: 1 });
  try {
    const identity = await sts.send(new GetCallerIdentityCommand({}));
    return { arn: identity.Arn };
  } catch (error) {
    return { error: error instanceof Error ? error.name : String(error) };
  } finally {
    sts.destroy();
  }
}

/**
 * Calls `provider.verify` the way the engine does: until it succeeds `consecutiveSuccesses` times
 * in a row, retrying NOT_READY every `intervalMs` until `windowMs` runs out, then throwing the last
 * NOT_READY error. Any other error ends the loop at once.
 */
export async function verifyWithinPolicy<Params>(
  provider: CredentialProvider<Params>,
  params: Params,
  material: Material,
  ctx: StepContext,
): Promise<{ attempts: number }> {
  const policy = provider.verifyPolicy;
  const started = Date.now();
  let attempts = 0;
  let streak = 0;
  for (;;) {
    attempts += 1;
    try {
      await provider.verify(params, material, ctx);
      streak += 1;
      if (streak >= policy.consecutiveSuccesses) return { attempts };
    } catch (error) {
      if (!isRekeyError(error) || error.code !== 'NOT_READY') throw error;
      streak = 0;
      if (Date.now() - started + policy.intervalMs > policy.windowMs) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, policy.intervalMs));
  }
}

/** Lists every version of a secret, labelled or not, as `{ versionId: labels }`, through the admin identity. */
export async function secretVersions(secrets: SecretsManagerClient, secretId: string): Promise<Record<string, string[]>> {
  const listed = await secrets.send(new ListSecretVersionIdsCommand({ SecretId: secretId, IncludeDeprecated: true }));
  return Object.fromEntries((listed.Versions ?? []).map((version) => [version.VersionId, [...(version.VersionStages ?? [])].sort()]));
}
