import type { Env, SecretStore, StagedVersion, StepContext, StoreDescription } from '../../src/contracts.js';
import { isRekeyError, RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { createVaultClient, type KvMetadata, type VaultClient } from '../vault-shared/index.js';
import {
  BASE_VERSION_KEY, KEY_ID_KEY, PENDING_MAX_VERSIONS, PENDING_PREFIX, ROTATION_ID_KEY, ROTATION_ID_PATTERN, RUN_ID_KEY, VAULT_KV_KIND,
  VERSION_KEY,
} from './constants.js';
import { validateParams, VAULT_KV_PARAMS_SCHEMA, type VaultKvParams, type VaultKvTarget } from './schema.js';

type KvData = Record<string, SecretValue>;

function pendingPathOf(target: VaultKvTarget, rotationId: string): string {
  return `${PENDING_PREFIX}/${target.path}/${rotationId}`;
}

function describePath(mount: string, path: string): string {
  return `${mount}/data/${path}`;
}

function validateRotationId(rotationId: string): void {
  if (!ROTATION_ID_PATTERN.test(rotationId)) {
    throw new RekeyError('INVALID_PARAMETERS', `rotation id "${rotationId}" is invalid in a Vault path: expected 1 to 128 letters, digits, ".", "_" or "-", such as a UUID`);
  }
}

/** Converts the staged JSON document of material fields into KV data, with the target's key names. */
function kvDataOf(target: VaultKvTarget, document: SecretValue, rotationId: string): KvData {
  let parsed: unknown;
  try {
    parsed = JSON.parse(document.reveal());
  } catch {
    parsed = null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RekeyError('INVALID_PARAMETERS', `the staged value of rotation ${rotationId} is not a JSON object of material fields`);
  }

  const data: KvData = {};
  for (const [field, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof value !== 'string') throw new RekeyError('INVALID_PARAMETERS', `material field "${field}" of rotation ${rotationId} is not a string`);
    const key = target.fields[field] ?? field;
    if (data[key] !== undefined) {
      throw new RekeyError('INVALID_PARAMETERS', `two material fields of rotation ${rotationId} map to KV key "${key}": rename one with the target's fields`);
    }
    data[key] = SecretValue.fromString(value);
  }
  return data;
}

/** Converts KV data back into the JSON document of material fields. */
function documentOf(target: VaultKvTarget, data: KvData): SecretValue {
  const fieldOfKey = new Map(Object.entries(target.fields).map(([field, key]) => [key, field]));
  const plain: Record<string, string> = {};
  for (const [key, value] of Object.entries(data)) plain[fieldOfKey.get(key) ?? key] = value.reveal();
  return SecretValue.fromString(JSON.stringify(plain));
}

function sameData(left: KvData, right: KvData): boolean {
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  return keys.every((key) => right[key] !== undefined && right[key].reveal() === left[key]?.reveal());
}

function isCasConflict(error: unknown): boolean {
  return isRekeyError(error) && error.code === 'STORE_CONFLICT';
}

/** Returns whether the key's current version can be read, neither soft-deleted nor destroyed. */
function currentIsReadable(metadata: KvMetadata): boolean {
  const current = metadata.versions.get(metadata.currentVersion);
  return current !== undefined && current.deletionTime === '' && !current.destroyed;
}

/**
 * A HashiCorp Vault KV version 2 secret that receives a credential's replacement.
 *
 * Consumers read `<mount>/data/<path>`, which never shows an unverified replacement. A stage
 * writes the replacement to a rekey-owned key, `<mount>/data/rekey-pending/<path>/<rotationId>`,
 * with check-and-set 0 (create only). The same value for the same rotation id can be written
 * again harmlessly, and another value is a STORE_CONFLICT. Before the value, the stage records in
 * the pending key's custom metadata the consumer path's current version (`rekey_base_version`)
 * and the key id (`rekey_key_id`).
 *
 * Promote writes the value to the consumer path with check-and-set equal to that base version. If
 * another writer changed the secret between stage and promote, the write fails with STORE_CONFLICT
 * and nothing is overwritten. Promote then sets the consumer path's custom metadata
 * (`rekey_run_id`, `rekey_rotation_id`, `rekey_key_id` and `rekey_version`, the version it wrote)
 * and deletes the pending key with all its versions. A promote of the rotation that is already
 * current succeeds without a write.
 *
 * The token needs, besides `sys/capabilities-self` for check: read and create or update on
 * `<mount>/data/<path>`, read and update on `<mount>/metadata/<path>`, and read, create, update,
 * delete and list under `<mount>/data/rekey-pending/` and `<mount>/metadata/rekey-pending/`.
 */
export class VaultKvStore implements SecretStore<VaultKvParams> {
  readonly kind = VAULT_KV_KIND;
  /** An estimate well below a Vault cluster's usual request capacity; REKEY_CALL_LIMITS overrides it. */
  readonly callLimits = { concurrency: 16, perSecond: 100 };
  readonly paramsSchema = VAULT_KV_PARAMS_SCHEMA;

  readonly #client: VaultClient;

  constructor(client: VaultClient) {
    this.#client = client;
  }

  /**
   * Checks that the token works and may do what stage, promote, discard and describe do on this
   * target, with sys/capabilities-self. A token whose policy does not allow that endpoint is
   * checked by reading the consumer path's metadata instead, which cannot prove the writes.
   */
  async check(params: VaultKvParams, ctx: StepContext): Promise<void> {
    const target = validateParams(params);
    validateRotationId(ctx.rotationId);
    const { mount, path } = target;
    const metadata = await this.#client.readKvMetadata(mount, path, ctx);

    const pending = pendingPathOf(target, ctx.rotationId);
    const required: Record<string, string[]> = {
      [`${mount}/data/${path}`]: ['read', metadata === null ? 'create' : 'update'],
      [`${mount}/metadata/${path}`]: ['read', 'update'],
      [`${mount}/data/${pending}`]: ['read', 'create'],
      [`${mount}/metadata/${pending}`]: ['read', 'create', 'update', 'delete'],
      [`${mount}/metadata/${PENDING_PREFIX}/${path}/`]: ['list'],
    };

    let granted: Record<string, string[]>;
    try {
      granted = await this.#client.capabilitiesSelf(Object.keys(required), ctx);
    } catch (error) {
      if (!isRekeyError(error) || error.code !== 'PERMISSION_DENIED') throw error;
      ctx.logger.warn({ mount, path }, 'check: the token may not call sys/capabilities-self, so only its read access was checked');
      return;
    }

    const missing = Object.entries(required)
      .map(([capabilityPath, needed]) => {
        const has = granted[capabilityPath] ?? [];
        const lacking = has.includes('root') ? [] : needed.filter((capability) => !has.includes(capability) || has.includes('deny'));
        return lacking.length === 0 ? null : `${capabilityPath} (${lacking.join(', ')})`;
      })
      .filter((entry): entry is string => entry !== null);
    if (missing.length > 0) {
      throw new RekeyError('PERMISSION_DENIED', `rekey's Vault token lacks capabilities for vault-kv target ${describePath(mount, path)}: ${missing.join('; ')}. Grant them in the token's policy`);
    }
    ctx.logger.debug({ mount, path }, 'check: Vault token has the capabilities the store needs');
  }

  async stage(params: VaultKvParams, version: StagedVersion, ctx: StepContext): Promise<void> {
    const target = validateParams(params);
    validateRotationId(version.rotationId);
    const { mount, path } = target;
    const data = kvDataOf(target, version.value, version.rotationId);

    const consumer = await this.#client.readKvMetadata(mount, path, ctx);
    if (consumer?.customMetadata[ROTATION_ID_KEY] === version.rotationId) {
      ctx.logger.debug({ mount, path, rotationId: version.rotationId }, 'stage: version already promoted');
      return;
    }

    const pendingPath = pendingPathOf(target, version.rotationId);
    const pending = await this.#client.readKvMetadata(mount, pendingPath, ctx);
    const recordedKeyId = pending?.customMetadata[KEY_ID_KEY];
    if (recordedKeyId !== undefined && recordedKeyId !== version.keyId) {
      throw new RekeyError('STORE_CONFLICT', `${describePath(mount, pendingPath)} contains key ${recordedKeyId}, not ${version.keyId}: a rotation id must not be reused for a new value`);
    }

    // The base version is recorded before the value and kept when stage runs again, so that a write
    // to the consumer path between a first attempt and a retry still makes promote fail.
    const baseVersion = pending?.customMetadata[BASE_VERSION_KEY] ?? String(consumer?.currentVersion ?? 0);
    await this.#client.writeKvMetadata(mount, pendingPath, {
      maxVersions: PENDING_MAX_VERSIONS,
      customMetadata: { [BASE_VERSION_KEY]: baseVersion, [KEY_ID_KEY]: version.keyId, [ROTATION_ID_KEY]: version.rotationId, [RUN_ID_KEY]: ctx.runId },
    }, ctx);
    await this.#writePending(mount, pendingPath, data, version.rotationId, ctx);
    ctx.logger.info({ mount, path, rotationId: version.rotationId, keyId: version.keyId, baseVersion }, 'stage: pending version written');
  }

  /** Returns the rotation's value while it is pending or while it is current after promote, or null otherwise. */
  async readPending(params: VaultKvParams, rotationId: string, ctx: StepContext): Promise<SecretValue | null> {
    const target = validateParams(params);
    validateRotationId(rotationId);
    const { mount, path } = target;

    const pending = await this.#client.readKv(mount, pendingPathOf(target, rotationId), ctx);
    if (pending?.data) return documentOf(target, pending.data);

    const consumer = await this.#client.readKvMetadata(mount, path, ctx);
    const promotedVersion = Number(consumer?.customMetadata[VERSION_KEY]);
    if (consumer?.customMetadata[ROTATION_ID_KEY] !== rotationId || !Number.isInteger(promotedVersion)) return null;
    const promoted = await this.#client.readKv(mount, path, ctx, { version: promotedVersion });
    return promoted?.data ? documentOf(target, promoted.data) : null;
  }

  async promote(params: VaultKvParams, rotationId: string, ctx: StepContext): Promise<void> {
    const target = validateParams(params);
    validateRotationId(rotationId);
    const { mount, path } = target;
    const pendingPath = pendingPathOf(target, rotationId);

    const consumer = await this.#client.readKvMetadata(mount, path, ctx);
    if (consumer?.customMetadata[ROTATION_ID_KEY] === rotationId) {
      // A promote that stopped after the metadata update may have left the pending key behind.
      await this.#client.deleteKvMetadata(mount, pendingPath, ctx);
      ctx.logger.debug({ mount, path, rotationId }, 'promote: version already current');
      return;
    }

    const pendingMetadata = await this.#client.readKvMetadata(mount, pendingPath, ctx);
    const pending = await this.#client.readKv(mount, pendingPath, ctx);
    if (pendingMetadata === null || !pending?.data) {
      throw new RekeyError('MATERIAL_LOST', `${describePath(mount, pendingPath)} contains no pending version of rotation ${rotationId} to promote: it was never staged or was discarded`);
    }
    const baseVersion = Number(pendingMetadata.customMetadata[BASE_VERSION_KEY]);
    if (!Number.isInteger(baseVersion) || baseVersion < 0) {
      throw new RekeyError('STORE_CONFLICT', `${describePath(mount, pendingPath)} has no valid ${BASE_VERSION_KEY} in its custom metadata, so rekey cannot tell whether ${describePath(mount, path)} changed since stage: discard the rotation and run it again`);
    }

    const written = await this.#writeConsumer(target, pending.data, baseVersion, rotationId, ctx);
    const keyId = pendingMetadata.customMetadata[KEY_ID_KEY] ?? '';
    await this.#client.writeKvMetadata(mount, path, {
      customMetadata: {
        ...consumer?.customMetadata,
        [RUN_ID_KEY]: ctx.runId, [ROTATION_ID_KEY]: rotationId, [KEY_ID_KEY]: keyId, [VERSION_KEY]: String(written),
      },
    }, ctx);
    await this.#client.deleteKvMetadata(mount, pendingPath, ctx);
    ctx.logger.info({ mount, path, rotationId, keyId, version: written, previousVersion: baseVersion }, 'promote: version promoted');
  }

  /** Deletes the rotation's pending key with all its versions. The consumer path is left as it is. */
  async discard(params: VaultKvParams, rotationId: string, ctx: StepContext): Promise<void> {
    const target = validateParams(params);
    validateRotationId(rotationId);
    await this.#client.deleteKvMetadata(target.mount, pendingPathOf(target, rotationId), ctx);
    ctx.logger.info({ mount: target.mount, path: target.path, rotationId }, 'discard: pending version deleted');
  }

  /**
   * Reads the current key id from the consumer path's custom metadata. It is null when rekey never
   * promoted to the path, or when the current version is not the one rekey wrote or cannot be read.
   */
  async describe(params: VaultKvParams, ctx: StepContext): Promise<StoreDescription> {
    const target = validateParams(params);
    const { mount, path } = target;
    const consumer = await this.#client.readKvMetadata(mount, path, ctx);

    let currentKeyId: string | null = null;
    if (consumer !== null && currentIsReadable(consumer)) {
      const promotedVersion = consumer.customMetadata[VERSION_KEY];
      const current = promotedVersion === undefined || Number(promotedVersion) === consumer.currentVersion;
      currentKeyId = current ? (consumer.customMetadata[KEY_ID_KEY] ?? null) : null;
    }

    const pendingIds = (await this.#client.listKv(mount, `${PENDING_PREFIX}/${path}`, ctx)).filter((key) => !key.endsWith('/')).sort();
    if (pendingIds.length > 1) ctx.logger.warn({ mount, path, rotationIds: pendingIds }, 'describe: several pending versions exist');
    return { currentKeyId, pendingRotationId: pendingIds[0] ?? null };
  }

  async close(): Promise<void> {
    this.#client.close();
  }

  /** Writes the pending value create-only. The same value already there counts as written. */
  async #writePending(mount: string, pendingPath: string, data: KvData, rotationId: string, ctx: StepContext): Promise<void> {
    try {
      await this.#client.writeKv(mount, pendingPath, data, { cas: 0 }, ctx);
      return;
    } catch (error) {
      if (!isCasConflict(error)) throw error;
    }

    const existing = await this.#client.readKv(mount, pendingPath, ctx);
    if (existing?.data && sameData(existing.data, data)) {
      ctx.logger.debug({ mount, pendingPath, rotationId }, 'stage: pending version already written');
      return;
    }
    throw new RekeyError(
      'STORE_CONFLICT',
      `${describePath(mount, pendingPath)} already contains another value for rotation ${rotationId}: a rotation id must not be reused for a new value. ` +
        `If that entry is stale, delete it with: vault kv metadata delete -mount=${mount} ${pendingPath}`,
    );
  }

  /**
   * Writes the consumer path with check-and-set on the base version and returns the version
   * written. A conflict is this rotation's own write when the path is exactly one version past the
   * base and contains this value, which is what a promote that stopped after the write leaves.
   */
  async #writeConsumer(target: VaultKvTarget, data: KvData, baseVersion: number, rotationId: string, ctx: StepContext): Promise<number> {
    const { mount, path } = target;
    try {
      return (await this.#client.writeKv(mount, path, data, { cas: baseVersion }, ctx)).version;
    } catch (error) {
      if (!isCasConflict(error)) throw error;
    }

    const metadata = await this.#client.readKvMetadata(mount, path, ctx);
    const current = metadata?.currentVersion ?? 0;
    if (current === baseVersion + 1) {
      const written = await this.#client.readKv(mount, path, ctx, { version: current });
      if (written?.data && sameData(written.data, data)) return current;
    }
    throw new RekeyError(
      'STORE_CONFLICT',
      `${describePath(mount, path)} changed after rotation ${rotationId} was staged: version ${current} is current, but the stage recorded version ${baseVersion}. ` +
        `rekey overwrote nothing and left the pending version at ${describePath(mount, pendingPathOf(target, rotationId))}; ` +
        'find out who wrote the secret, then discard this rotation and run it again',
    );
  }
}

/** Creates the store with a Vault client configured by the environment (see readVaultSettings). */
export function createVaultKvStore(env: Env): VaultKvStore {
  return new VaultKvStore(createVaultClient(env));
}
