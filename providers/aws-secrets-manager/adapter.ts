import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import type { Env, SecretStore, StagedVersion, StepContext, StoreDescription } from '../../src/contracts.js';
import { quoteError, RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { awsClientConfig, awsErrorCode, readAwsSettings, toRekeyError, type AwsSettings } from '../aws-shared.js';
import {
  AWS_SECRETS_MANAGER_KIND,
  CREATED_SECRET_DESCRIPTION,
  CURRENT_LABEL,
  KEY_ID_LABEL_PREFIX,
  MAX_CLIENT_REQUEST_TOKEN_LENGTH,
  MAX_STAGING_LABEL_LENGTH,
  MIN_CLIENT_REQUEST_TOKEN_LENGTH,
  PENDING_LABEL,
  PLACEHOLDER_SECRET_STRING,
} from './constants.js';
import { AWS_SECRETS_MANAGER_PARAMS_SCHEMA, type AwsSecretsManagerParams } from './schema.js';

/** Staging labels of each labelled version of a secret, by version id, as DescribeSecret returns them. */
type VersionLabels = Record<string, string[]>;

interface SecretState {
  /** True when the secret is scheduled for deletion, which rejects every write. */
  deleted: boolean;
  versions: VersionLabels;
}

/** Returns the id of the version that carries `label`, or null. */
function versionWithLabel(versions: VersionLabels, label: string): string | null {
  for (const [versionId, labels] of Object.entries(versions)) {
    if (labels.includes(label)) return versionId;
  }
  return null;
}

/** Returns the key-id label for `keyId`, or null when the label would exceed the length limit. */
function keyIdLabelOf(keyId: string): string | null {
  const label = `${KEY_ID_LABEL_PREFIX}${keyId}`;
  return label.length <= MAX_STAGING_LABEL_LENGTH ? label : null;
}

function keyIdOfLabels(labels: readonly string[]): string | null {
  const label = labels.find((candidate) => candidate.startsWith(KEY_ID_LABEL_PREFIX));
  return label === undefined ? null : label.slice(KEY_ID_LABEL_PREFIX.length);
}

/**
 * Returns the id of a version that carries AWSPENDING without being current and that `isOwn`
 * does not claim, or null. AWSPENDING on the current version is what a finished Secrets Manager
 * rotation may leave behind, and the next write moves it.
 */
function findStrayPending(versions: VersionLabels, isOwn: (versionId: string) => boolean): string | null {
  for (const [versionId, labels] of Object.entries(versions)) {
    if (labels.includes(PENDING_LABEL) && !labels.includes(CURRENT_LABEL) && !isOwn(versionId)) return versionId;
  }
  return null;
}

function strayPendingError(secretId: string, versionId: string): RekeyError {
  return new RekeyError(
    'STORE_CONFLICT',
    `secret ${secretId} has a pending version ${versionId} (label ${PENDING_LABEL}) from another rotation or writer. ` +
      `Finish or cancel that rotation, or remove the label with UpdateSecretVersionStage, then retry`,
  );
}

/** Throws INVALID_PARAMETERS unless `rotationId` fits Secrets Manager's version ids (ClientRequestToken). */
function validateVersionId(rotationId: string): void {
  if (rotationId.length < MIN_CLIENT_REQUEST_TOKEN_LENGTH || rotationId.length > MAX_CLIENT_REQUEST_TOKEN_LENGTH) {
    throw new RekeyError(
      'INVALID_PARAMETERS',
      `rotation id "${rotationId}" is invalid as a Secrets Manager version id: expected ${MIN_CLIENT_REQUEST_TOKEN_LENGTH} to ` +
        `${MAX_CLIENT_REQUEST_TOKEN_LENGTH} characters, such as a UUID`,
    );
  }
}

function validateWritable(secretId: string, state: SecretState): void {
  if (state.deleted) {
    throw new RekeyError(
      'PRECONDITION_FAILED',
      `secret ${secretId} is scheduled for deletion: restore it with RestoreSecret or point the inventory at another secret`,
    );
  }
}

function isArn(secretId: string): boolean {
  return secretId.startsWith('arn:');
}

function notCreatableError(secretId: string): RekeyError {
  return new RekeyError('TARGET_NOT_FOUND', `secret ${secretId} not found, and rekey can create a missing secret from a name but not from an ARN: create the secret or set secretId to its name`);
}

/**
 * An AWS Secrets Manager secret that receives a credential's replacement. The rotation id is the
 * version id (ClientRequestToken), so writing a rotation twice creates one version. A staged
 * version carries AWSPENDING. Promote moves AWSCURRENT to it, and Secrets Manager then labels the
 * old version AWSPREVIOUS.
 *
 * Each rekey version also carries a `rekey-key-id:<keyId>` staging label, which is how describe
 * reports the current key id from metadata alone.
 */
export class AwsSecretsManagerStore implements SecretStore<AwsSecretsManagerParams> {
  readonly kind = AWS_SECRETS_MANAGER_KIND;
  /** PutSecretValue and UpdateSecretVersionStage allow 50 requests a second per account; rekey keeps below. */
  readonly callLimits = { concurrency: 8, perSecond: 40 };
  readonly paramsSchema = AWS_SECRETS_MANAGER_PARAMS_SCHEMA;

  readonly #client: SecretsManagerClient;

  constructor(settings: AwsSettings) {
    this.#client = new SecretsManagerClient(awsClientConfig(settings));
  }

  /**
   * Checks that the secret exists and accepts writes, or can be created, and that no other
   * rotation's pending version is in the way. It cannot prove the write permission without writing.
   */
  async check(params: AwsSecretsManagerParams, ctx: StepContext): Promise<void> {
    validateVersionId(ctx.rotationId);
    const state = await this.#readState(params.secretId, ctx);
    if (state === null) {
      if (isArn(params.secretId)) throw notCreatableError(params.secretId);
      ctx.logger.debug({ secretId: params.secretId }, 'secret not found, stage will create it');
      return;
    }

    validateWritable(params.secretId, state);
    // This rotation's own pending version is resumed, not a conflict. The engine stages a later
    // attempt of the same rotation under `<rotationId>-<attempt>`.
    const isOwn = (versionId: string): boolean => versionId === ctx.rotationId || versionId.startsWith(`${ctx.rotationId}-`);
    const stray = findStrayPending(state.versions, isOwn);
    if (stray !== null) throw strayPendingError(params.secretId, stray);
  }

  async stage(params: AwsSecretsManagerParams, version: StagedVersion, ctx: StepContext): Promise<void> {
    const { secretId } = params;
    const versionId = version.rotationId;
    validateVersionId(versionId);

    const state = (await this.#readState(secretId, ctx)) ?? (await this.#createSecret(secretId, ctx));
    validateWritable(secretId, state);
    if ((state.versions[versionId] ?? []).includes(CURRENT_LABEL)) {
      ctx.logger.debug({ secretId, versionId }, 'version already promoted');
      return;
    }

    const stray = findStrayPending(state.versions, (candidate) => candidate === versionId);
    if (stray !== null) throw strayPendingError(secretId, stray);
    if (versionWithLabel(state.versions, CURRENT_LABEL) === null) await this.#putPlaceholder(secretId, ctx);

    const keyIdLabel = keyIdLabelOf(version.keyId);
    if (keyIdLabel === null) {
      ctx.logger.warn({ secretId, versionId, keyId: version.keyId }, 'key id too long for a staging label, describe will not report it');
    }
    const labels = keyIdLabel === null ? [PENDING_LABEL] : [PENDING_LABEL, keyIdLabel];
    const written = await this.#putPendingValue(secretId, versionId, version.value, labels, ctx);

    // Secrets Manager ignores a repeated write of the same token and value, labels included, so
    // a version that discard stripped of its labels gets them back here.
    for (const label of labels) {
      if (!written.includes(label)) await this.#moveLabel(secretId, label, versionId, versionWithLabel(state.versions, label), ctx);
    }
    ctx.logger.info({ secretId, versionId, keyId: version.keyId }, 'pending version written');
  }

  /** Returns the value of the rotation's version while it is pending or current, or null. */
  async readPending(params: AwsSecretsManagerParams, rotationId: string, ctx: StepContext): Promise<SecretValue | null> {
    validateVersionId(rotationId);
    let read;
    try {
      read = await this.#client.send(new GetSecretValueCommand({ SecretId: params.secretId, VersionId: rotationId }), { abortSignal: ctx.signal });
    } catch (error) {
      if (awsErrorCode(error) === 'ResourceNotFoundException') return null;
      throw toRekeyError(error, 'secretsmanager:GetSecretValue', `version ${rotationId} of secret ${params.secretId}`);
    }

    // A version with neither label was discarded or superseded, and Secrets Manager may delete it.
    const labels = read.VersionStages ?? [];
    if (!labels.includes(PENDING_LABEL) && !labels.includes(CURRENT_LABEL)) return null;
    return read.SecretString === undefined ? null : SecretValue.fromString(read.SecretString);
  }

  async promote(params: AwsSecretsManagerParams, rotationId: string, ctx: StepContext): Promise<void> {
    const { secretId } = params;
    validateVersionId(rotationId);
    const state = await this.#readState(secretId, ctx);
    const labels = state?.versions[rotationId] ?? [];
    const currentVersionId = state === null ? null : versionWithLabel(state.versions, CURRENT_LABEL);

    if (currentVersionId !== rotationId) {
      if (state === null || !labels.includes(PENDING_LABEL)) {
        throw new RekeyError('MATERIAL_LOST', `secret ${secretId} has no pending version ${rotationId} to promote: it was never staged or was discarded`);
      }
      // AWSCURRENT moves before AWSPENDING goes, so that a crash in between leaves the version
      // labelled, because Secrets Manager may delete a version without labels.
      await this.#moveLabel(secretId, CURRENT_LABEL, rotationId, currentVersionId, ctx);
    }
    if (labels.includes(PENDING_LABEL)) await this.#removeLabel(secretId, PENDING_LABEL, rotationId, ctx);

    // Only the current and a pending version keep their key-id label, to stay under the limit of
    // staging labels per secret.
    for (const [versionId, versionLabels] of Object.entries(state?.versions ?? {})) {
      if (versionId === rotationId || versionLabels.includes(PENDING_LABEL)) continue;
      for (const label of versionLabels.filter((candidate) => candidate.startsWith(KEY_ID_LABEL_PREFIX))) {
        await this.#removeLabel(secretId, label, versionId, ctx);
      }
    }
    ctx.logger.info({ secretId, versionId: rotationId, previousVersionId: currentVersionId }, 'version promoted');
  }

  async discard(params: AwsSecretsManagerParams, rotationId: string, ctx: StepContext): Promise<void> {
    const { secretId } = params;
    validateVersionId(rotationId);
    const state = await this.#readState(secretId, ctx);
    const labels = state?.versions[rotationId] ?? [];
    if (labels.length === 0) {
      ctx.logger.debug({ secretId, versionId: rotationId }, 'pending version already gone');
      return;
    }

    if (labels.includes(PENDING_LABEL)) await this.#removeLabel(secretId, PENDING_LABEL, rotationId, ctx);
    if (labels.includes(CURRENT_LABEL)) {
      ctx.logger.warn({ secretId, versionId: rotationId }, 'version already promoted, left current');
      return;
    }
    for (const label of labels.filter((candidate) => candidate.startsWith(KEY_ID_LABEL_PREFIX))) {
      await this.#removeLabel(secretId, label, rotationId, ctx);
    }
    ctx.logger.info({ secretId, versionId: rotationId }, 'pending version discarded');
  }

  /**
   * Reads the current key id from the current version's key-id label. A version that rekey did
   * not write, or the placeholder of a secret rekey created, has none, so the key id is null.
   */
  async describe(params: AwsSecretsManagerParams, ctx: StepContext): Promise<StoreDescription> {
    const state = await this.#readState(params.secretId, ctx);
    if (state === null) return { currentKeyId: null, pendingRotationId: null };

    const currentVersionId = versionWithLabel(state.versions, CURRENT_LABEL);
    const pendingVersionId = versionWithLabel(state.versions, PENDING_LABEL);
    return {
      currentKeyId: currentVersionId === null ? null : keyIdOfLabels(state.versions[currentVersionId] ?? []),
      pendingRotationId: pendingVersionId === currentVersionId ? null : pendingVersionId,
    };
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  /** Reads the secret's versions and labels, or returns null when the secret does not exist. */
  async #readState(secretId: string, ctx: StepContext): Promise<SecretState | null> {
    try {
      const described = await this.#client.send(new DescribeSecretCommand({ SecretId: secretId }), { abortSignal: ctx.signal });
      return { deleted: (described.DeletedDate ?? null) !== null, versions: described.VersionIdsToStages ?? {} };
    } catch (error) {
      if (awsErrorCode(error) === 'ResourceNotFoundException') return null;
      throw toRekeyError(error, 'secretsmanager:DescribeSecret', `secret ${secretId}`);
    }
  }

  /** Creates the secret with the placeholder as its current value and returns its state. */
  async #createSecret(secretId: string, ctx: StepContext): Promise<SecretState> {
    if (isArn(secretId)) throw notCreatableError(secretId);
    try {
      await this.#client.send(
        new CreateSecretCommand({ Name: secretId, SecretString: PLACEHOLDER_SECRET_STRING, Description: CREATED_SECRET_DESCRIPTION }),
        { abortSignal: ctx.signal },
      );
      ctx.logger.info({ secretId }, 'secret created');
    } catch (error) {
      if (awsErrorCode(error) !== 'ResourceExistsException') throw toRekeyError(error, 'secretsmanager:CreateSecret', `secret ${secretId}`);
      ctx.logger.info({ secretId }, 'secret created by another writer meanwhile');
    }

    const state = await this.#readState(secretId, ctx);
    if (state === null) {
      throw new RekeyError('UNAVAILABLE', `secret ${secretId} was created, but DescribeSecret does not return it yet: retry the stage`);
    }
    return state;
  }

  /**
   * Writes the placeholder as the current version of a secret that has none, because Secrets
   * Manager would otherwise make the pending version current.
   */
  async #putPlaceholder(secretId: string, ctx: StepContext): Promise<void> {
    try {
      await this.#client.send(
        new PutSecretValueCommand({ SecretId: secretId, SecretString: PLACEHOLDER_SECRET_STRING, VersionStages: [CURRENT_LABEL] }),
        { abortSignal: ctx.signal },
      );
    } catch (error) {
      throw toRekeyError(error, 'secretsmanager:PutSecretValue', `secret ${secretId}`);
    }
    ctx.logger.info({ secretId }, 'placeholder written as current version');
  }

  /** Writes the pending value and returns the labels the version carries afterwards. */
  async #putPendingValue(secretId: string, versionId: string, value: SecretValue, labels: string[], ctx: StepContext): Promise<string[]> {
    try {
      const written = await this.#client.send(
        new PutSecretValueCommand({ SecretId: secretId, ClientRequestToken: versionId, SecretString: value.reveal(), VersionStages: labels }),
        { abortSignal: ctx.signal },
      );
      return written.VersionStages ?? [];
    } catch (error) {
      if (awsErrorCode(error) === 'ResourceExistsException') {
        throw new RekeyError(
          'STORE_CONFLICT',
          `secret ${secretId} already has a version ${versionId} with another value: a rotation id must not be reused for a new value (${quoteError(error, [value])})`,
          { cause: error },
        );
      }
      throw toRekeyError(error, 'secretsmanager:PutSecretValue', `secret ${secretId}`, [value]);
    }
  }

  /** Attaches `label` to `versionId`, removing it from `fromVersionId` when another version carries it. */
  async #moveLabel(secretId: string, label: string, versionId: string, fromVersionId: string | null, ctx: StepContext): Promise<void> {
    const removeFrom = fromVersionId === null || fromVersionId === versionId ? undefined : fromVersionId;
    await this.#updateLabel(secretId, label, { MoveToVersionId: versionId, RemoveFromVersionId: removeFrom }, ctx);
  }

  async #removeLabel(secretId: string, label: string, versionId: string, ctx: StepContext): Promise<void> {
    await this.#updateLabel(secretId, label, { RemoveFromVersionId: versionId }, ctx);
  }

  async #updateLabel(
    secretId: string,
    label: string,
    change: { MoveToVersionId?: string; RemoveFromVersionId?: string },
    ctx: StepContext,
  ): Promise<void> {
    try {
      await this.#client.send(new UpdateSecretVersionStageCommand({ SecretId: secretId, VersionStage: label, ...change }), { abortSignal: ctx.signal });
    } catch (error) {
      throw toRekeyError(error, 'secretsmanager:UpdateSecretVersionStage', `label ${label} of secret ${secretId}`);
    }
  }
}

/** Creates the store from rekey's AWS settings (see readAwsSettings). */
export function createAwsSecretsManagerStore(env: Env): AwsSecretsManagerStore {
  return new AwsSecretsManagerStore(readAwsSettings(env));
}
