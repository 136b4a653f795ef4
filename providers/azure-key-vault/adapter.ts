import { SecretClient, type SecretProperties } from '@azure/keyvault-secrets';
import type { TokenCredential } from '@azure/identity';
import type { Env, SecretStore, StagedVersion, StepContext, StoreDescription } from '../../src/contracts.js';
import { quoteError, RekeyError, type ErrorCode } from '../../src/errors.js';
import { parseDuration } from '../../src/inventory/schema.js';
import { SecretValue } from '../../src/secret.js';
import {
  createAdminCredential,
  identityErrorCode,
  MICROSOFT_KEY_VAULT_SUFFIXES,
  pipelineOptions,
  readAzureSettings,
  type AzureSettings,
} from '../azure-shared/index.js';
import {
  AZURE_KEY_VAULT_KIND,
  BASE_VERSION_TAG,
  CONTENT_TYPE,
  DEFAULT_DISABLE_PREVIOUS_AFTER,
  KEY_ID_TAG,
  PENDING_SUFFIX,
  PREVIOUS_VERSION_TAG,
  ROTATION_TAG,
} from './constants.js';
import { AZURE_KEY_VAULT_PARAMS_SCHEMA, type AzureKeyVaultParams } from './schema.js';

/** The metadata of one secret version that rekey reads: never its value. */
interface VersionInfo {
  version: string;
  enabled: boolean;
  createdOn: Date | undefined;
  tags: Record<string, string>;
}

function versionInfo(properties: SecretProperties): VersionInfo | null {
  if (properties.version === undefined) return null;
  return { version: properties.version, enabled: properties.enabled !== false, createdOn: properties.createdOn, tags: { ...properties.tags } };
}

function pendingNameOf(name: string): string {
  return `${name}${PENDING_SUFFIX}`;
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

/** True for SecretClient's refusal of a challenge whose resource does not match the vault's domain. */
function isChallengeMismatch(error: unknown): boolean {
  return error instanceof Error && error.message.includes('disableChallengeResourceVerification');
}

function keyVaultErrorCode(error: unknown): ErrorCode {
  if (isChallengeMismatch(error)) return 'INVALID_PARAMETERS';
  const status = statusOf(error);
  if (status === undefined) return identityErrorCode(error);
  if (status === 401 || status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'TARGET_NOT_FOUND';
  if (status === 409) return 'STORE_CONFLICT';
  if (status === 429) return 'THROTTLED';
  if (status >= 500) return 'UNAVAILABLE';
  return status === 400 ? 'INVALID_PARAMETERS' : 'INTERNAL';
}

/**
 * Converts a Key Vault or identity error into a RekeyError. The SDK's RestError keeps the request,
 * whose body contains the value on a write, so the error is quoted (name and message only) and never
 * attached as the cause.
 */
function toRekeyError(error: unknown, action: string, subject: string, secrets: readonly SecretValue[] = []): RekeyError {
  const code = keyVaultErrorCode(error);
  let hint = '';
  if (code === 'PERMISSION_DENIED') hint = '. Give rekey\'s identity the Key Vault Secrets Officer role on the secret and its -rekey-pending secret';
  if (isChallengeMismatch(error)) {
    hint = '. For a vault outside Microsoft\'s Key Vault domains (a private endpoint), set REKEY_AZURE_KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION=true';
  }
  return new RekeyError(code, `Key Vault ${action} on ${subject} failed: ${quoteError(error, secrets)}${hint}`);
}

/** True for the SDK's 403 error on a read of a disabled version. */
function isDisabledError(error: unknown): boolean {
  return statusOf(error) === 403 && /disabled/i.test(error instanceof Error ? error.message : '');
}

/**
 * An Azure Key Vault secret that receives a credential's replacement. Consumers read the latest
 * version of `<name>`. A staged value is a version of the rekey-owned secret `<name>-rekey-pending`,
 * tagged with the rotation id, so consumers never read it. Promote copies it into a new version
 * of `<name>`, which Key Vault makes the latest, and disables the pending version.
 *
 * The version that promote replaced stays enabled, for consumers pinned to a version id, until
 * the old client secret is revoked: `retire` then disables it, without deleting it. A promote also
 * disables replaced versions older than `disablePreviousAfter` (default 1h).
 */
export class AzureKeyVaultStore implements SecretStore<AzureKeyVaultParams> {
  readonly kind = AZURE_KEY_VAULT_KIND;
  readonly paramsSchema = AZURE_KEY_VAULT_PARAMS_SCHEMA;
  /**
   * Key Vault allows 300 secret writes and 4,000 other requests per 10 s per vault (Key Vault
   * service limits). One store call sends up to seven requests and the SDK retries 429 and 5xx
   * responses itself, hence the longer timeout. REKEY_CALL_LIMITS overrides these.
   */
  readonly callLimits = { concurrency: 8, perSecond: 20, timeoutMs: 60_000 };

  readonly #settings: AzureSettings;
  readonly #credential: TokenCredential;
  readonly #clients = new Map<string, SecretClient>();

  constructor(settings: AzureSettings, credential: TokenCredential) {
    this.#settings = settings;
    this.#credential = credential;
  }

  /**
   * Checks that the vault accepts rekey's identity and that no other rotation's pending version
   * is in the way, changing nothing. It cannot prove the write permission without writing.
   */
  async check(params: AzureKeyVaultParams, ctx: StepContext): Promise<void> {
    await this.#latest(params, ctx);
    const pending = await this.#versions(params, pendingNameOf(params.name), ctx);
    const stray = pending.find((version) => version.enabled && !this.#isOwn(version, ctx.rotationId));
    if (stray !== undefined) throw this.#strayError(params, stray);
  }

  async stage(params: AzureKeyVaultParams, version: StagedVersion, ctx: StepContext): Promise<void> {
    const pendingName = pendingNameOf(params.name);
    const pending = await this.#versions(params, pendingName, ctx);
    if (pending.some((candidate) => candidate.enabled && candidate.tags[ROTATION_TAG] === version.rotationId)) {
      ctx.logger.debug({ vaultUrl: params.vaultUrl, name: pendingName, rotationId: version.rotationId }, 'pending version already written');
      return;
    }
    const stray = pending.find((candidate) => candidate.enabled && !this.#isOwn(candidate, ctx.rotationId));
    if (stray !== undefined) throw this.#strayError(params, stray);

    const latest = await this.#latest(params, ctx);
    const tags = { [ROTATION_TAG]: version.rotationId, [KEY_ID_TAG]: version.keyId, [BASE_VERSION_TAG]: latest?.version ?? '' };
    let written;
    try {
      written = await this.#client(params).setSecret(pendingName, version.value.reveal(), { tags, contentType: CONTENT_TYPE, abortSignal: ctx.signal });
    } catch (error) {
      throw toRekeyError(error, 'setSecret', this.#describe(params, pendingName), [version.value]);
    }
    ctx.logger.info({ vaultUrl: params.vaultUrl, name: pendingName, version: written.properties.version, rotationId: version.rotationId, keyId: version.keyId }, 'pending version written');
  }

  async readPending(params: AzureKeyVaultParams, rotationId: string, ctx: StepContext): Promise<SecretValue | null> {
    const pendingName = pendingNameOf(params.name);
    const pending = (await this.#versions(params, pendingName, ctx)).find((version) => version.enabled && version.tags[ROTATION_TAG] === rotationId);
    if (pending === undefined) return null;
    return this.#readValue(params, pendingName, pending.version, ctx);
  }

  async promote(params: AzureKeyVaultParams, rotationId: string, ctx: StepContext): Promise<void> {
    const pendingName = pendingNameOf(params.name);
    const latest = await this.#latest(params, ctx);
    const pending = (await this.#versions(params, pendingName, ctx)).find((version) => version.tags[ROTATION_TAG] === rotationId && version.enabled);

    if (latest?.tags[ROTATION_TAG] !== rotationId) {
      if (pending === undefined) {
        throw new RekeyError('MATERIAL_LOST', `${this.#describe(params, pendingName)} has no pending version of rotation ${rotationId} to promote: it was never staged or was discarded`);
      }
      // Key Vault has no check-and-set, so a write by someone else since stage is detected here
      // instead of being overwritten. The window between this read and the write remains.
      const base = pending.tags[BASE_VERSION_TAG] ?? '';
      if ((latest?.version ?? '') !== base) {
        throw new RekeyError(
          'STORE_CONFLICT',
          `${this.#describe(params, params.name)} has a new version ${latest?.version ?? '(none)'} written since rotation ${rotationId} was staged on version ${base === '' ? '(none)' : base}; rekey did not overwrite it`,
        );
      }
      await this.#copyToConsumer(params, pendingName, pending, latest?.version ?? null, ctx);
    }

    if (pending !== undefined) await this.#setEnabled(params, pendingName, pending.version, false, ctx);
    const previousVersion = latest?.tags[ROTATION_TAG] === rotationId ? null : (latest?.version ?? null);
    ctx.logger.info({ vaultUrl: params.vaultUrl, name: params.name, rotationId, previousVersion }, 'version promoted');
    await this.disableReplacedVersions(params, ctx);
  }

  async discard(params: AzureKeyVaultParams, rotationId: string, ctx: StepContext): Promise<void> {
    const pendingName = pendingNameOf(params.name);
    const latest = await this.#latest(params, ctx);
    if (latest?.tags[ROTATION_TAG] === rotationId) {
      ctx.logger.warn({ vaultUrl: params.vaultUrl, name: params.name, rotationId }, 'version already promoted, left current');
    }
    const pending = (await this.#versions(params, pendingName, ctx)).filter((version) => version.enabled && version.tags[ROTATION_TAG] === rotationId);
    for (const version of pending) await this.#setEnabled(params, pendingName, version.version, false, ctx);
    ctx.logger.info({ vaultUrl: params.vaultUrl, name: pendingName, rotationId, disabled: pending.length }, 'pending version discarded');
  }

  /** Reads the current key id from the latest version's tag; a version rekey did not write has none. */
  async describe(params: AzureKeyVaultParams, ctx: StepContext): Promise<StoreDescription> {
    const latest = await this.#latest(params, ctx);
    const pending = (await this.#versions(params, pendingNameOf(params.name), ctx)).find((version) => version.enabled);
    return { currentKeyId: latest?.tags[KEY_ID_TAG] ?? null, pendingRotationId: pending?.tags[ROTATION_TAG] ?? null };
  }

  /**
   * Disables each version that a rekey promote replaced more than `graceMs` ago, by default the
   * store's `disablePreviousAfter`.
   * Consumers that read the latest version are unaffected; a consumer pinned to the old version id
   * gets 403 from then on. Disabled versions are kept, never deleted.
   */
  async disableReplacedVersions(params: AzureKeyVaultParams, ctx: StepContext, graceMs = parseDuration(params.disablePreviousAfter ?? DEFAULT_DISABLE_PREVIOUS_AFTER)): Promise<void> {
    const versions = await this.#versions(params, params.name, ctx);
    const enabled = new Set(versions.filter((version) => version.enabled).map((version) => version.version));
    for (const version of versions) {
      const previous = version.tags[PREVIOUS_VERSION_TAG];
      if (previous === undefined || !enabled.has(previous) || version.createdOn === undefined) continue;
      if (version.createdOn.getTime() + graceMs > Date.now()) continue;
      await this.#setEnabled(params, params.name, previous, false, ctx);
      enabled.delete(previous);
      ctx.logger.info({ vaultUrl: params.vaultUrl, name: params.name, version: previous, replacedBy: version.version }, 'replaced version disabled');
    }
  }

  /** Disables every version a rekey promote replaced: the old credential they hold is revoked. */
  async retire(params: AzureKeyVaultParams, ctx: StepContext): Promise<void> {
    await this.disableReplacedVersions(params, ctx, 0);
  }

  async close(): Promise<void> {
    this.#clients.clear();
  }

  /** Writes the pending value as the new latest version of the consumer secret. */
  async #copyToConsumer(params: AzureKeyVaultParams, pendingName: string, pending: VersionInfo, previousVersion: string | null, ctx: StepContext): Promise<void> {
    const value = await this.#readValue(params, pendingName, pending.version, ctx);
    if (value === null) {
      throw new RekeyError('MATERIAL_LOST', `${this.#describe(params, pendingName)} version ${pending.version} was disabled while rekey promoted it`);
    }
    const tags: Record<string, string> = { [ROTATION_TAG]: pending.tags[ROTATION_TAG] ?? '', [KEY_ID_TAG]: pending.tags[KEY_ID_TAG] ?? '' };
    // Recorded with the write itself, so a crash right after it still lets rekey find and disable
    // the replaced version later.
    if (previousVersion !== null) tags[PREVIOUS_VERSION_TAG] = previousVersion;
    try {
      await this.#client(params).setSecret(params.name, value.reveal(), { tags, contentType: CONTENT_TYPE, abortSignal: ctx.signal });
    } catch (error) {
      throw toRekeyError(error, 'setSecret', this.#describe(params, params.name), [value]);
    } finally {
      value.wipe();
    }
  }

  /** Reads the latest version's metadata of the consumer secret, or null when it does not exist. */
  async #latest(params: AzureKeyVaultParams, ctx: StepContext): Promise<VersionInfo | null> {
    // Key Vault has no metadata-only read of the latest version, and the versions list carries
    // creation times in whole seconds, which cannot order two versions written in one second.
    // So this reads the value too, and drops it unused.
    try {
      const secret = await this.#client(params).getSecret(params.name, { abortSignal: ctx.signal });
      return versionInfo(secret.properties);
    } catch (error) {
      if (statusOf(error) === 404) return null;
      if (isDisabledError(error)) {
        throw new RekeyError('PRECONDITION_FAILED', `the latest version of ${this.#describe(params, params.name)} is disabled, so its consumers cannot read it either: enable it or write a new version, then retry`);
      }
      throw toRekeyError(error, 'getSecret', this.#describe(params, params.name));
    }
  }

  async #versions(params: AzureKeyVaultParams, name: string, ctx: StepContext): Promise<VersionInfo[]> {
    const versions: VersionInfo[] = [];
    try {
      for await (const properties of this.#client(params).listPropertiesOfSecretVersions(name, { abortSignal: ctx.signal })) {
        const info = versionInfo(properties);
        if (info !== null) versions.push(info);
      }
    } catch (error) {
      if (statusOf(error) === 404) return [];
      throw toRekeyError(error, 'listPropertiesOfSecretVersions', this.#describe(params, name));
    }
    return versions;
  }

  async #readValue(params: AzureKeyVaultParams, name: string, version: string, ctx: StepContext): Promise<SecretValue | null> {
    try {
      const secret = await this.#client(params).getSecret(name, { version, abortSignal: ctx.signal });
      return secret.value === undefined ? null : SecretValue.fromString(secret.value);
    } catch (error) {
      if (statusOf(error) === 404 || isDisabledError(error)) return null;
      throw toRekeyError(error, 'getSecret', `${this.#describe(params, name)} version ${version}`);
    }
  }

  async #setEnabled(params: AzureKeyVaultParams, name: string, version: string, enabled: boolean, ctx: StepContext): Promise<void> {
    try {
      await this.#client(params).updateSecretProperties(name, version, { enabled, abortSignal: ctx.signal });
    } catch (error) {
      throw toRekeyError(error, 'updateSecretProperties', `${this.#describe(params, name)} version ${version}`);
    }
  }

  /** A pending version of this rotation, or of an earlier attempt of it (`<rotationId>-<n>`), is not a conflict. */
  #isOwn(version: VersionInfo, rotationId: string): boolean {
    const owner = version.tags[ROTATION_TAG] ?? '';
    return owner === rotationId || owner.startsWith(`${rotationId}-`);
  }

  #strayError(params: AzureKeyVaultParams, version: VersionInfo): RekeyError {
    return new RekeyError(
      'STORE_CONFLICT',
      `${this.#describe(params, pendingNameOf(params.name))} has an enabled pending version ${version.version} of another rotation ` +
        `(${version.tags[ROTATION_TAG] ?? 'no rotation tag'}). Let that rotation finish, or disable the version, then retry`,
    );
  }

  #describe(params: AzureKeyVaultParams, name: string): string {
    return `secret ${name} in ${params.vaultUrl}`;
  }

  #client(params: AzureKeyVaultParams): SecretClient {
    const vaultUrl = params.vaultUrl.replace(/\/$/, '');
    let client = this.#clients.get(vaultUrl);
    if (client === undefined) {
      client = new SecretClient(vaultUrl, this.#credential, {
        ...pipelineOptions(this.#settings),
        disableChallengeResourceVerification: this.#skipChallengeVerification(vaultUrl),
      });
      this.#clients.set(vaultUrl, client);
    }
    return client;
  }

  /**
   * SecretClient checks that a challenge's resource matches the vault's domain. rekey lifts that
   * check only when REKEY_AZURE_KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION is true and the
   * vault is not on a Microsoft Key Vault domain, such as a private endpoint or a test server.
   */
  #skipChallengeVerification(vaultUrl: string): boolean {
    if (!this.#settings.disableChallengeResourceVerification) return false;
    const host = new URL(vaultUrl).hostname;
    return !MICROSOFT_KEY_VAULT_SUFFIXES.some((suffix) => host.endsWith(suffix));
  }
}

/** Creates the store from rekey's Azure settings (see readAzureSettings). */
export function createAzureKeyVaultStore(env: Env): AzureKeyVaultStore {
  const settings = readAzureSettings(env);
  return new AzureKeyVaultStore(settings, createAdminCredential(settings));
}
