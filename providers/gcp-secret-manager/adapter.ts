import type { Env, SecretStore, StagedVersion, StepContext, StoreDescription } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import type { SecretValue } from '../../src/secret.js';
import { GcpAuth, readGcpSettings } from '../gcp-shared/index.js';
import { SecretManagerApi, type VersionInfo } from './client.js';
import {
  GCP_SECRET_MANAGER_KIND,
  KEY_ID_ANNOTATION,
  PENDING_LABEL,
  PENDING_SECRET_SUFFIX,
  PROMOTING_AFTER_ANNOTATION,
  PROMOTING_ANNOTATION,
  ROTATION_ID_ANNOTATION,
  VERSION_ANNOTATION,
} from './constants.js';
import { GCP_SECRET_MANAGER_PARAMS_SCHEMA, type GcpSecretManagerParams } from './schema.js';

const ENABLED = 'ENABLED';
const DESTROYED = 'DESTROYED';

function pendingSecretOf(params: GcpSecretManagerParams): string {
  return `${params.secret}${PENDING_SECRET_SUFFIX}`;
}

/** True when `stageId` belongs to the rotation of `ctx`: its first stage, or a later attempt `<rotationId>-<n>`. */
function isOwnStage(stageId: string | undefined, ctx: StepContext): boolean {
  return stageId !== undefined && (stageId === ctx.rotationId || stageId.startsWith(`${ctx.rotationId}-`));
}

function withoutPromoting(annotations: Record<string, string>): Record<string, string> {
  const rest = { ...annotations };
  delete rest[PROMOTING_ANNOTATION];
  delete rest[PROMOTING_AFTER_ANNOTATION];
  return rest;
}

/**
 * A Google Secret Manager secret that receives a credential's replacement.
 *
 * Consumers read the target secret's `latest` version, which Secret Manager resolves to the newest
 * version whatever its state: a new version added disabled would make their reads fail, and one
 * added enabled would be read before it is verified. So stage writes the value to a separate
 * secret, `<secret>-rekey-pending`, annotated with the rotation id. Promote copies it into the
 * target secret as a new version, records the rotation id, key id and version number as
 * annotations of the target secret and destroys the pending copy. Retire, once the old
 * credential is revoked, disables the older enabled versions.
 *
 * NOTE: rekey never destroys the disabled versions. An operator destroys them when no consumer
 * pins them.
 */
export class GcpSecretManagerStore implements SecretStore<GcpSecretManagerParams> {
  readonly kind = GCP_SECRET_MANAGER_KIND;
  /**
   * Secret Manager allows 600 read and 600 write requests a minute per project ("Secret Manager
   * quotas and limits"), and one store call here makes up to about five of each, so two calls a
   * second stay below both.
   */
  readonly callLimits = { concurrency: 4, perSecond: 2 };
  readonly paramsSchema = GCP_SECRET_MANAGER_PARAMS_SCHEMA;

  readonly #auth: GcpAuth;
  readonly #api: SecretManagerApi;

  constructor(auth: GcpAuth) {
    this.#auth = auth;
    this.#api = new SecretManagerApi(auth);
  }

  /**
   * Checks that the secrets can be read, and that no other rotation's pending value waits in the
   * pending secret. A missing secret is created at stage. It cannot prove write access without writing.
   */
  async check(params: GcpSecretManagerParams, ctx: StepContext): Promise<void> {
    await this.#api.getSecret(params.project, params.secret);
    await this.#requireNoForeignPending(params, ctx);
  }

  async stage(params: GcpSecretManagerParams, version: StagedVersion, ctx: StepContext): Promise<void> {
    const { project } = params;
    const pendingSecret = pendingSecretOf(params);
    const target = await this.#api.getSecret(project, params.secret);
    if (target?.annotations[ROTATION_ID_ANNOTATION] === version.rotationId) {
      ctx.logger.debug({ project, secret: params.secret, stageId: version.rotationId }, 'version already promoted');
      return;
    }
    if (target === null) {
      // A secret without versions has no `latest`, so its consumers read nothing until promote.
      await this.#api.createSecret(project, params.secret, {}, {});
      ctx.logger.info({ project, secret: params.secret }, 'secret created');
    }

    const annotations = { [ROTATION_ID_ANNOTATION]: version.rotationId, [KEY_ID_ANNOTATION]: version.keyId };
    let pending = await this.#api.getSecret(project, pendingSecret);
    if (pending === null) {
      await this.#api.createSecret(project, pendingSecret, { [PENDING_LABEL]: 'true' }, annotations);
      pending = await this.#api.getSecret(project, pendingSecret);
    }

    const versions = await this.#api.listVersions(project, pendingSecret);
    const stagedId = pending?.annotations[ROTATION_ID_ANNOTATION];
    if (stagedId === version.rotationId && versions[0]?.state === ENABLED) {
      ctx.logger.debug({ project, secret: pendingSecret, stageId: version.rotationId }, 'pending version already written');
      return;
    }
    if (stagedId !== version.rotationId) {
      if (!isOwnStage(stagedId, ctx) && versions.some((candidate) => candidate.state === ENABLED)) {
        throw this.#foreignPendingError(params, stagedId);
      }
      // The annotation moves first: a crash before the value is added leaves an empty pending
      // secret of this rotation, which the retry fills.
      await this.#destroyAll(project, pendingSecret, versions);
      await this.#api.setAnnotations(project, pendingSecret, annotations);
    }

    const number = await this.#api.addVersion(project, pendingSecret, version.value);
    ctx.logger.info({ project, secret: pendingSecret, version: number, stageId: version.rotationId, keyId: version.keyId }, 'pending version written');
  }

  /** Returns the rotation's value while it is pending or current, or null. */
  async readPending(params: GcpSecretManagerParams, rotationId: string, ctx: StepContext): Promise<SecretValue | null> {
    const { project } = params;
    const target = await this.#api.getSecret(project, params.secret);
    if (target?.annotations[ROTATION_ID_ANNOTATION] === rotationId) {
      const number = Number(target.annotations[VERSION_ANNOTATION]);
      return Number.isInteger(number) ? this.#api.access(project, params.secret, number) : null;
    }

    const pendingSecret = pendingSecretOf(params);
    const pending = await this.#api.getSecret(project, pendingSecret);
    if (pending?.annotations[ROTATION_ID_ANNOTATION] !== rotationId) return null;
    ctx.logger.debug({ project, secret: pendingSecret, stageId: rotationId }, 'reading pending version');
    return this.#api.access(project, pendingSecret, 'latest');
  }

  async promote(params: GcpSecretManagerParams, rotationId: string, ctx: StepContext): Promise<void> {
    const { project, secret } = params;
    const target = await this.#api.getSecret(project, secret);
    if (target === null) throw new RekeyError('MATERIAL_LOST', `secret ${secret} of project ${project} does not exist, so pending version ${rotationId} cannot be promoted`);

    let number = Number(target.annotations[VERSION_ANNOTATION]);
    if (target.annotations[ROTATION_ID_ANNOTATION] !== rotationId) {
      number = await this.#addPromotedVersion(params, rotationId, target.annotations);
    }

    const pendingSecret = pendingSecretOf(params);
    const pending = await this.#api.getSecret(project, pendingSecret);
    if (pending?.annotations[ROTATION_ID_ANNOTATION] === rotationId) {
      await this.#destroyAll(project, pendingSecret, await this.#api.listVersions(project, pendingSecret));
    }
    ctx.logger.info({ project, secret, version: number, stageId: rotationId }, 'version promoted');
  }

  async discard(params: GcpSecretManagerParams, rotationId: string, ctx: StepContext): Promise<void> {
    const { project } = params;
    const target = await this.#api.getSecret(project, params.secret);
    if (target?.annotations[ROTATION_ID_ANNOTATION] === rotationId) {
      ctx.logger.warn({ project, secret: params.secret, stageId: rotationId }, 'version already promoted, left current');
      return;
    }

    const pendingSecret = pendingSecretOf(params);
    const pending = await this.#api.getSecret(project, pendingSecret);
    if (pending?.annotations[ROTATION_ID_ANNOTATION] !== rotationId) {
      ctx.logger.debug({ project, secret: pendingSecret, stageId: rotationId }, 'pending version already gone');
      return;
    }
    await this.#destroyAll(project, pendingSecret, await this.#api.listVersions(project, pendingSecret));
    ctx.logger.info({ project, secret: pendingSecret, stageId: rotationId }, 'pending version discarded');
  }

  /** Reads the current key id from the target secret's annotation, and a pending rotation from the pending secret. */
  async describe(params: GcpSecretManagerParams, _ctx: StepContext): Promise<StoreDescription> {
    const target = await this.#api.getSecret(params.project, params.secret);
    const pendingSecret = pendingSecretOf(params);
    const pending = await this.#api.getSecret(params.project, pendingSecret);
    const pendingEnabled = pending !== null && (await this.#api.listVersions(params.project, pendingSecret)).some((version) => version.state === ENABLED);
    return {
      currentKeyId: target?.annotations[KEY_ID_ANNOTATION] ?? null,
      pendingRotationId: pendingEnabled ? (pending.annotations[ROTATION_ID_ANNOTATION] ?? null) : null,
    };
  }

  /**
   * Disables every enabled version older than the one rekey promoted last. Called once the old
   * credential is revoked, so a consumer pinned to an old version number keeps working until then.
   */
  async retire(params: GcpSecretManagerParams, ctx: StepContext): Promise<void> {
    const { project, secret } = params;
    const target = await this.#api.getSecret(project, secret);
    const current = Number(target?.annotations[VERSION_ANNOTATION]);
    if (!Number.isInteger(current)) return;
    const versions = await this.#api.listVersions(project, secret);
    for (const older of versions.filter((candidate) => candidate.number < current && candidate.state === ENABLED)) {
      await this.#api.disable(project, secret, older.number);
      ctx.logger.info({ project, secret, version: older.number }, 'replaced version disabled');
    }
  }

  async close(): Promise<void> {
    await this.#auth.close();
  }

  /**
   * Copies the pending value into the target secret as its newest version and records it in the
   * target's annotations. The annotations first name the rotation and the newest version before
   * the copy, so a retry after a crash between the copy and the final annotations finds the copy
   * instead of adding a second one.
   */
  async #addPromotedVersion(params: GcpSecretManagerParams, rotationId: string, annotations: Record<string, string>): Promise<number> {
    const { project, secret } = params;
    const pendingSecret = pendingSecretOf(params);
    const pending = await this.#api.getSecret(project, pendingSecret);
    const value = pending?.annotations[ROTATION_ID_ANNOTATION] === rotationId ? await this.#api.access(project, pendingSecret, 'latest') : null;
    if (pending === null || value === null) {
      throw new RekeyError('MATERIAL_LOST', `secret ${pendingSecret} of project ${project} has no pending version ${rotationId} to promote: it was never staged or was discarded`);
    }

    try {
      const newest = (await this.#api.listVersions(project, secret))[0]?.number ?? 0;
      const after = Number(annotations[PROMOTING_AFTER_ANNOTATION]);
      // NOTE: a version that another writer adds during this promote's crash window would be
      // taken for rekey's copy, because the annotations cannot tell the two apart.
      let number: number;
      if (annotations[PROMOTING_ANNOTATION] === rotationId && Number.isInteger(after) && newest > after) {
        number = newest;
      } else {
        await this.#api.setAnnotations(project, secret, { ...annotations, [PROMOTING_ANNOTATION]: rotationId, [PROMOTING_AFTER_ANNOTATION]: String(newest) });
        number = await this.#api.addVersion(project, secret, value);
      }

      await this.#api.setAnnotations(project, secret, {
        ...withoutPromoting(annotations),
        [ROTATION_ID_ANNOTATION]: rotationId,
        [KEY_ID_ANNOTATION]: pending.annotations[KEY_ID_ANNOTATION] ?? '',
        [VERSION_ANNOTATION]: String(number),
      });
      return number;
    } finally {
      value.wipe();
    }
  }

  async #requireNoForeignPending(params: GcpSecretManagerParams, ctx: StepContext): Promise<void> {
    const pendingSecret = pendingSecretOf(params);
    const pending = await this.#api.getSecret(params.project, pendingSecret);
    if (pending === null) return;
    const stagedId = pending.annotations[ROTATION_ID_ANNOTATION];
    if (isOwnStage(stagedId, ctx)) return;
    const versions = await this.#api.listVersions(params.project, pendingSecret);
    if (versions.some((version) => version.state === ENABLED)) throw this.#foreignPendingError(params, stagedId);
  }

  #foreignPendingError(params: GcpSecretManagerParams, stagedId: string | undefined): RekeyError {
    return new RekeyError(
      'STORE_CONFLICT',
      `secret ${pendingSecretOf(params)} of project ${params.project} holds a pending version of another rotation (${stagedId ?? 'no rotation id'}). ` +
        'Finish or discard that rotation, or destroy the pending secret\'s versions, then retry',
    );
  }

  async #destroyAll(project: string, secret: string, versions: readonly VersionInfo[]): Promise<void> {
    for (const version of versions) {
      if (version.state !== DESTROYED) await this.#api.destroy(project, secret, version.number);
    }
  }
}

/** Creates the store from rekey's GCP settings (see readGcpSettings). */
export function createGcpSecretManagerStore(env: Env): GcpSecretManagerStore {
  return new GcpSecretManagerStore(new GcpAuth(readGcpSettings(env)));
}
