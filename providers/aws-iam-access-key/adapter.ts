import {
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  IAMClient,
  ListAccessKeysCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { CredentialProvider, Env, Inspection, KnownKeys, PollPolicy, StepContext } from '../../src/contracts.js';
import { quoteError, RekeyError } from '../../src/errors.js';
import { plainField, secretField, SecretValue, type Material } from '../../src/secret.js';
import { awsClientConfig, awsErrorCode, readAwsSettings, toRekeyError, type AwsSettings } from '../aws-shared.js';
import {
  ACCESS_KEY_ID_FIELD,
  AWS_IAM_ACCESS_KEY_KIND,
  DEFAULT_VERIFY_POLICY,
  KEY_NOT_ACCEPTED_ERRORS,
  MAX_ACCESS_KEYS_PER_USER,
  SECRET_ACCESS_KEY_FIELD,
} from './constants.js';
import { AWS_IAM_ACCESS_KEY_PARAMS_SCHEMA, type AwsIamAccessKeyParams } from './schema.js';

/**
 * Sorts a user's access keys into the current key and the orphans that rekey may discard, and
 * throws KEY_QUOTA when the keys left after discarding leave no room for a replacement.
 *
 * An orphan is a key from `known.unpromotedKeyIds`: rekey minted it and never promoted it, so no
 * consumer reads it. A key that rekey did not mint is never an orphan. The current key is the
 * recorded one while it exists, otherwise the only key that is not an orphan. A key that rekey
 * minted and never promoted is never reported as current, so a resumed rotation cannot revoke its
 * own replacement.
 */
export function classifyAccessKeys(userName: string, keyIds: readonly string[], known: KnownKeys): Inspection {
  const recorded = known.currentKeyId !== null && keyIds.includes(known.currentKeyId) ? known.currentKeyId : null;
  const orphanKeyIds = keyIds.filter((keyId) => keyId !== recorded && known.unpromotedKeyIds.includes(keyId));
  const keptKeyIds = keyIds.filter((keyId) => !orphanKeyIds.includes(keyId));

  if (keptKeyIds.length >= MAX_ACCESS_KEYS_PER_USER) {
    const listed = keptKeyIds.map((keyId) => (keyId === recorded ? `${keyId} (current)` : keyId)).join(', ');
    throw new RekeyError(
      'KEY_QUOTA',
      `IAM user ${userName} already has the maximum of ${MAX_ACCESS_KEYS_PER_USER} access keys: ${listed}. ` +
        'rekey deletes only replacements that it minted and never promoted, so delete the unused key by hand, then retry',
    );
  }
  return { currentKeyId: keptKeyIds[0] ?? null, orphanKeyIds };
}

/** Returns the user name of an IAM user ARN (arn:aws:iam::123456789012:user/path/name), or null. */
function userNameOfArn(arn: string | undefined): string | null {
  const resource = arn?.split(':').slice(5).join(':');
  if (resource === undefined || !resource.startsWith('user/')) return null;
  return resource.split('/').pop() ?? null;
}

/**
 * The access key of an IAM user. AWS creates the secret (minted family). Verify signs STS
 * GetCallerIdentity with the new key, and revoke deletes the old one.
 */
export class AwsIamAccessKeyProvider implements CredentialProvider<AwsIamAccessKeyParams> {
  readonly kind = AWS_IAM_ACCESS_KEY_KIND;
  readonly family = 'minted' as const;
  readonly keyIdIsPublic = true;
  /**
   * AWS publishes no IAM request rate. These limits are estimates that stay well below the rates
   * at which users have reported `Throttling: Rate exceeded`; REKEY_CALL_LIMITS overrides them.
   */
  readonly callLimits = { concurrency: 4, perSecond: 10 };
  readonly paramsSchema = AWS_IAM_ACCESS_KEY_PARAMS_SCHEMA;
  readonly secretFields = [SECRET_ACCESS_KEY_FIELD] as const;
  readonly verifyPolicy: PollPolicy;

  readonly #settings: AwsSettings;
  readonly #iam: IAMClient;

  constructor(settings: AwsSettings, verifyPolicy: PollPolicy) {
    this.#settings = settings;
    this.verifyPolicy = verifyPolicy;
    this.#iam = new IAMClient(awsClientConfig(settings));
  }

  async inspect(params: AwsIamAccessKeyParams, known: KnownKeys, ctx: StepContext): Promise<Inspection> {
    const keyIds = await this.#listAccessKeyIds(params.userName, ctx);
    const inspection = classifyAccessKeys(params.userName, keyIds, known);
    ctx.logger.debug({ userName: params.userName, keyIds, ...inspection }, 'access keys inspected');
    return inspection;
  }

  async mint(params: AwsIamAccessKeyParams, ctx: StepContext): Promise<Material> {
    let created;
    try {
      created = await this.#iam.send(new CreateAccessKeyCommand({ UserName: params.userName }), { abortSignal: ctx.signal });
    } catch (error) {
      if (awsErrorCode(error) === 'LimitExceeded') {
        throw new RekeyError(
          'KEY_QUOTA',
          `IAM user ${params.userName} already has the maximum of ${MAX_ACCESS_KEYS_PER_USER} access keys, so no replacement can be created: ${quoteError(error)}`,
          { cause: error },
        );
      }
      throw toRekeyError(error, 'iam:CreateAccessKey', `IAM user ${params.userName}`);
    }

    const key = created.AccessKey;
    if (key?.AccessKeyId === undefined || key.SecretAccessKey === undefined) {
      throw new RekeyError('INTERNAL', `iam:CreateAccessKey for IAM user ${params.userName} returned no access key`);
    }
    ctx.logger.info({ userName: params.userName, keyId: key.AccessKeyId }, 'access key minted');
    return {
      keyId: key.AccessKeyId,
      fields: {
        [ACCESS_KEY_ID_FIELD]: key.AccessKeyId,
        [SECRET_ACCESS_KEY_FIELD]: SecretValue.fromString(key.SecretAccessKey),
      },
    };
  }

  async verify(params: AwsIamAccessKeyParams, material: Material, ctx: StepContext): Promise<void> {
    const accessKeyId = plainField(material, ACCESS_KEY_ID_FIELD);
    const secret = secretField(material, SECRET_ACCESS_KEY_FIELD);
    // The SDK's own retries would spend the engine's polling window, so one attempt per call.
    const sts = new STSClient(awsClientConfig(this.#settings, {
      credentials: { accessKeyId, secretAccessKey: secret.reveal() },
      maxAttempts: 1,
    }));

    let identity;
    try {
      identity = await sts.send(new GetCallerIdentityCommand({}), { abortSignal: ctx.signal });
    } catch (error) {
      const name = awsErrorCode(error);
      if (name !== undefined && KEY_NOT_ACCEPTED_ERRORS.has(name)) {
        throw new RekeyError(
          'NOT_READY',
          `STS rejects access key ${accessKeyId} of IAM user ${params.userName} yet: ${quoteError(error, [secret])}`,
          { cause: error },
        );
      }
      throw toRekeyError(error, 'sts:GetCallerIdentity', `access key ${accessKeyId}`, [secret]);
    } finally {
      sts.destroy();
    }

    if (userNameOfArn(identity.Arn) !== params.userName) {
      throw new RekeyError(
        'VERIFY_FAILED',
        `access key ${accessKeyId} signs in as ${identity.Arn ?? '(no ARN)'}, not as IAM user ${params.userName}`,
      );
    }
    ctx.logger.debug({ userName: params.userName, keyId: accessKeyId }, 'access key accepted by STS');
  }

  async discard(params: AwsIamAccessKeyParams, keyId: string, ctx: StepContext): Promise<void> {
    await this.#deleteAccessKey(params.userName, keyId, ctx);
  }

  async disable(params: AwsIamAccessKeyParams, oldKeyId: string, ctx: StepContext): Promise<void> {
    try {
      await this.#iam.send(
        new UpdateAccessKeyCommand({ UserName: params.userName, AccessKeyId: oldKeyId, Status: 'Inactive' }),
        { abortSignal: ctx.signal },
      );
    } catch (error) {
      if (awsErrorCode(error) === 'NoSuchEntity') {
        ctx.logger.info({ userName: params.userName, keyId: oldKeyId }, 'access key already deleted');
        return;
      }
      throw toRekeyError(error, 'iam:UpdateAccessKey', `access key ${oldKeyId} of IAM user ${params.userName}`);
    }
    ctx.logger.info({ userName: params.userName, keyId: oldKeyId }, 'access key disabled');
  }

  async revoke(params: AwsIamAccessKeyParams, oldKeyId: string, ctx: StepContext): Promise<void> {
    await this.#deleteAccessKey(params.userName, oldKeyId, ctx);
  }

  /**
   * Returns true once IAM no longer lists the old key. The old secret is not available here, so
   * this cannot prove that STS rejects it, and IAM deletions propagate with a delay too.
   */
  async confirm(params: AwsIamAccessKeyParams, oldKeyId: string, ctx: StepContext): Promise<boolean> {
    try {
      const keyIds = await this.#listAccessKeyIds(params.userName, ctx);
      return !keyIds.includes(oldKeyId);
    } catch (error) {
      if (error instanceof RekeyError && error.code === 'TARGET_NOT_FOUND') {
        ctx.logger.info({ userName: params.userName, keyId: oldKeyId }, 'IAM user not found, so the old access key is gone');
        return true;
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    this.#iam.destroy();
  }

  async #listAccessKeyIds(userName: string, ctx: StepContext): Promise<string[]> {
    const keyIds: string[] = [];
    let marker: string | undefined;
    do {
      let page;
      try {
        page = await this.#iam.send(new ListAccessKeysCommand({ UserName: userName, Marker: marker }), { abortSignal: ctx.signal });
      } catch (error) {
        if (awsErrorCode(error) === 'NoSuchEntity') {
          throw new RekeyError('TARGET_NOT_FOUND', `IAM user ${userName} does not exist: check userName in the inventory`, { cause: error });
        }
        throw toRekeyError(error, 'iam:ListAccessKeys', `IAM user ${userName}`);
      }
      for (const key of page.AccessKeyMetadata ?? []) {
        if (key.AccessKeyId !== undefined) keyIds.push(key.AccessKeyId);
      }
      marker = page.IsTruncated === true ? page.Marker : undefined;
    } while (marker !== undefined);
    return keyIds;
  }

  /** Deletes an access key. A key or user that no longer exists counts as deleted. */
  async #deleteAccessKey(userName: string, keyId: string, ctx: StepContext): Promise<void> {
    try {
      await this.#iam.send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: keyId }), { abortSignal: ctx.signal });
    } catch (error) {
      if (awsErrorCode(error) === 'NoSuchEntity') {
        ctx.logger.info({ userName, keyId }, 'access key already deleted');
        return;
      }
      throw toRekeyError(error, 'iam:DeleteAccessKey', `access key ${keyId} of IAM user ${userName}`);
    }
    ctx.logger.info({ userName, keyId }, 'access key deleted');
  }
}

/** Reads a positive whole number of milliseconds from `env`, or returns `fallback` when unset. */
function readMilliseconds(env: Env, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) {
    throw new RekeyError('INVALID_PARAMETERS', `${name}="${text}" is invalid: expected a positive whole number of milliseconds`);
  }
  return value;
}

/**
 * Creates the provider from rekey's AWS settings (see readAwsSettings) and the optional verify
 * overrides REKEY_AWS_VERIFY_WINDOW_MS and REKEY_AWS_VERIFY_INTERVAL_MS.
 */
export function createAwsIamAccessKeyProvider(env: Env): AwsIamAccessKeyProvider {
  const settings = readAwsSettings(env);
  const verifyPolicy: PollPolicy = {
    windowMs: readMilliseconds(env, 'REKEY_AWS_VERIFY_WINDOW_MS', DEFAULT_VERIFY_POLICY.windowMs),
    intervalMs: readMilliseconds(env, 'REKEY_AWS_VERIFY_INTERVAL_MS', DEFAULT_VERIFY_POLICY.intervalMs),
    consecutiveSuccesses: DEFAULT_VERIFY_POLICY.consecutiveSuccesses,
  };
  return new AwsIamAccessKeyProvider(settings, verifyPolicy);
}
