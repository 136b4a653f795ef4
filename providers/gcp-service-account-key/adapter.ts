import type { CredentialProvider, Env, Inspection, KnownKeys, PollPolicy, StepContext } from '../../src/contracts.js';
import { quoteError, RekeyError } from '../../src/errors.js';
import { SecretValue, type Material } from '../../src/secret.js';
import {
  GcpAuth,
  googleApiErrorOf,
  parseServiceAccountKeyFile,
  readGcpSettings,
  readMilliseconds,
  requestJson,
  toRekeyError,
  type ServiceAccountKeyFile,
} from '../gcp-shared/index.js';
import {
  CLIENT_EMAIL_FIELD,
  DEFAULT_VERIFY_POLICY,
  GCP_SERVICE_ACCOUNT_KEY_KIND,
  KEY_ALGORITHM,
  KEY_CREATION_CONSTRAINTS,
  KEY_ID_FIELD,
  MAX_KEYS_PER_SERVICE_ACCOUNT,
  PRIVATE_KEY_FIELD,
  PRIVATE_KEY_TYPE,
  VERIFY_INTERVAL_ENV,
  VERIFY_WINDOW_ENV,
} from './constants.js';
import { GCP_SERVICE_ACCOUNT_KEY_PARAMS_SCHEMA, type GcpServiceAccountKeyParams } from './schema.js';

/** A key as IAM lists it (ServiceAccountKey, without key material). */
interface KeyResource {
  name?: string;
  validAfterTime?: string;
  keyType?: string;
  disabled?: boolean;
}

/** The keys.create response: the key and, once only, its key file in base64. */
interface CreatedKeyResource extends KeyResource {
  privateKeyData?: string;
}

/** A user-managed key of a service account, as rekey classifies it. */
export interface ServiceAccountKey {
  keyId: string;
  disabled: boolean;
  /** Creation time (`validAfterTime`) in epoch milliseconds, or 0 when IAM returned none. */
  createdAt: number;
}

function keyIdOfName(name: string | undefined): string | null {
  const keyId = name?.split('/keys/')[1];
  return keyId === undefined || keyId === '' ? null : keyId;
}

/**
 * Sorts a service account's user-managed keys into the current key, the orphans that rekey may
 * discard and the other keys, and throws KEY_QUOTA when the keys left after discarding leave no
 * room for a replacement.
 *
 * An orphan is a key from `known.unpromotedKeyIds`: rekey minted it and never promoted it. The
 * current key is the recorded one while it exists, otherwise the newest enabled key that is not an
 * orphan. Every other key also lets the account in, so it is reported in `otherKeyIds`, which
 * incident mode revokes. A key that rekey minted and never promoted is never reported as current.
 */
export function classifyServiceAccountKeys(serviceAccount: string, keys: readonly ServiceAccountKey[], known: KnownKeys): Inspection {
  const recorded = known.currentKeyId !== null && keys.some((key) => key.keyId === known.currentKeyId) ? known.currentKeyId : null;
  const orphanKeyIds = keys.map((key) => key.keyId).filter((keyId) => keyId !== recorded && known.unpromotedKeyIds.includes(keyId));
  const remaining = keys.filter((key) => !orphanKeyIds.includes(key.keyId));

  if (remaining.length >= MAX_KEYS_PER_SERVICE_ACCOUNT) {
    const listed = remaining.map((key) => `${key.keyId}${key.keyId === recorded ? ' (current)' : ''}${key.disabled ? ' (disabled)' : ''}`).join(', ');
    throw new RekeyError(
      'KEY_QUOTA',
      `service account ${serviceAccount} already has the maximum of ${MAX_KEYS_PER_SERVICE_ACCOUNT} user-managed keys: ${listed}. ` +
        'rekey deletes only replacements that it minted and never promoted, so delete unused keys by hand, then retry',
    );
  }

  const newestEnabled = remaining.filter((key) => !key.disabled).sort((a, b) => b.createdAt - a.createdAt)[0];
  const currentKeyId = recorded ?? newestEnabled?.keyId ?? null;
  return { currentKeyId, orphanKeyIds, otherKeyIds: remaining.map((key) => key.keyId).filter((keyId) => keyId !== currentKeyId) };
}

/** Rebuilds the key file from material, whose fields are the key file's fields. */
function keyFileOf(material: Material): ServiceAccountKeyFile {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(material.fields)) fields[name] = typeof value === 'string' ? value : value.reveal();
  return parseServiceAccountKeyFile(JSON.stringify(fields), `the stored key file of key ${material.keyId}`);
}

function isKeyCreationPolicyError(error: unknown): boolean {
  const google = googleApiErrorOf(error);
  if (google?.status !== 'FAILED_PRECONDITION') return false;
  const text = `${google.message} ${google.detailsText}`;
  return KEY_CREATION_CONSTRAINTS.some((constraint) => text.includes(constraint)) || text.includes('Key creation is not allowed');
}

/**
 * A user-managed key of a GCP service account. IAM creates the private key (minted family) and
 * returns the key file once, and a store receives that key file as it is. Verify exchanges a JWT
 * signed with the new key for an access token, and revoke disables, then deletes, the old key.
 */
export class GcpServiceAccountKeyProvider implements CredentialProvider<GcpServiceAccountKeyParams> {
  readonly kind = GCP_SERVICE_ACCOUNT_KEY_KIND;
  readonly family = 'minted' as const;
  /** The key id appears in the key file beside the private key, so a scanner can report it alone. */
  readonly keyIdIsPublic = true;
  readonly paramsSchema = GCP_SERVICE_ACCOUNT_KEY_PARAMS_SCHEMA;
  readonly secretFields = [PRIVATE_KEY_FIELD] as const;
  readonly verifyPolicy: PollPolicy;

  readonly #auth: GcpAuth;

  constructor(auth: GcpAuth, verifyPolicy: PollPolicy) {
    this.#auth = auth;
    this.verifyPolicy = verifyPolicy;
  }

  async inspect(params: GcpServiceAccountKeyParams, known: KnownKeys, ctx: StepContext): Promise<Inspection> {
    const keys = await this.#listUserManagedKeys(params, ctx);
    const inspection = classifyServiceAccountKeys(params.serviceAccount, keys, known);
    ctx.logger.debug({ serviceAccount: params.serviceAccount, keyIds: keys.map((key) => key.keyId), ...inspection }, 'service account keys inspected');
    return inspection;
  }

  async mint(params: GcpServiceAccountKeyParams, ctx: StepContext): Promise<Material> {
    const account = params.serviceAccount;
    let created: CreatedKeyResource;
    try {
      created = await requestJson<CreatedKeyResource>(await this.#auth.adminClient(), {
        method: 'POST', url: this.#keysUrl(params), body: { privateKeyType: PRIVATE_KEY_TYPE, keyAlgorithm: KEY_ALGORITHM }, signal: ctx.signal,
      });
    } catch (error) {
      throw await this.#mintError(params, error, ctx);
    }

    const keyId = keyIdOfName(created.name);
    if (keyId === null || typeof created.privateKeyData !== 'string') {
      throw new RekeyError('INTERNAL', `keys.create for service account ${account} returned no key name or no key file`);
    }
    const keyFile = parseServiceAccountKeyFile(Buffer.from(created.privateKeyData, 'base64').toString('utf8'), `the key file of new key ${keyId} of ${account}`);
    if (keyFile.private_key_id !== keyId || keyFile.client_email !== account) {
      throw new RekeyError('INTERNAL', `keys.create for service account ${account} returned a key file of key ${keyFile.private_key_id} of ${keyFile.client_email}, not of key ${keyId}`);
    }
    ctx.logger.info({ serviceAccount: account, keyId }, 'service account key minted');

    const fields: Record<string, string | SecretValue> = {};
    for (const [name, value] of Object.entries(keyFile)) {
      if (value !== undefined) fields[name] = name === PRIVATE_KEY_FIELD ? SecretValue.fromString(value) : value;
    }
    return { keyId, fields };
  }

  /**
   * Exchanges a JWT signed with the new key for an access token. The token endpoint rejects a new
   * key with `invalid_grant` until IAM has propagated it, so a rejection is NOT_READY while the key
   * exists, is enabled and is younger than the verify window. It is VERIFY_FAILED once the key is
   * gone, disabled or older than the window, because the engine's retries could not help then.
   */
  async verify(params: GcpServiceAccountKeyParams, material: Material, ctx: StepContext): Promise<void> {
    const keyFile = keyFileOf(material);
    if (keyFile[CLIENT_EMAIL_FIELD] !== params.serviceAccount || keyFile[KEY_ID_FIELD] !== material.keyId) {
      throw new RekeyError('VERIFY_FAILED', `the key file of key ${material.keyId} belongs to ${keyFile.client_email} (key ${keyFile.private_key_id}), not to service account ${params.serviceAccount}`);
    }

    const exchange = await this.#auth.exchangeKey(keyFile, { trusted: false, signal: ctx.signal });
    if (exchange.ok) {
      exchange.accessToken.wipe();
      ctx.logger.debug({ serviceAccount: params.serviceAccount, keyId: material.keyId }, 'service account key accepted by the token endpoint');
      return;
    }

    const rejection = `${exchange.error}${exchange.description === '' ? '' : ` (${exchange.description})`}`;
    if (exchange.httpStatus === 429 || exchange.httpStatus >= 500) {
      // A busy endpoint proves nothing about the key: the engine polls on and keeps the key staged.
      const code = exchange.httpStatus === 429 ? 'THROTTLED' : 'UNAVAILABLE';
      throw new RekeyError(code, `the token endpoint could not check key ${material.keyId} of ${params.serviceAccount}: HTTP ${exchange.httpStatus} ${rejection}`);
    }
    if (exchange.error !== 'invalid_grant') {
      throw new RekeyError('VERIFY_FAILED', `the token endpoint rejected key ${material.keyId} of ${params.serviceAccount}: ${rejection}`);
    }

    const key = await this.#getKey(params, material.keyId, ctx);
    if (key === null || key.disabled) {
      throw new RekeyError('VERIFY_FAILED', `key ${material.keyId} of ${params.serviceAccount} is ${key === null ? 'deleted' : 'disabled'}, so the token endpoint rejects it: ${rejection}`);
    }
    const ageMs = Date.now() - key.createdAt;
    if (ageMs + this.verifyPolicy.intervalMs > this.verifyPolicy.windowMs) {
      throw new RekeyError(
        'VERIFY_FAILED',
        `the token endpoint still rejects key ${material.keyId} of ${params.serviceAccount} ${ageMs} ms after its creation, ` +
          `past the verify window of ${this.verifyPolicy.windowMs} ms: ${rejection}`,
      );
    }
    throw new RekeyError('NOT_READY', `the token endpoint rejects key ${material.keyId} of ${params.serviceAccount} yet (${ageMs} ms after its creation): ${rejection}`);
  }

  async discard(params: GcpServiceAccountKeyParams, keyId: string, ctx: StepContext): Promise<void> {
    await this.#deleteKey(params, keyId, ctx);
  }

  async disable(params: GcpServiceAccountKeyParams, oldKeyId: string, ctx: StepContext): Promise<void> {
    try {
      await requestJson(await this.#auth.adminClient(), { method: 'POST', url: this.#keyUrl(params, oldKeyId, ':disable'), body: {}, signal: ctx.signal });
    } catch (error) {
      if (googleApiErrorOf(error)?.status === 'NOT_FOUND') {
        ctx.logger.info({ serviceAccount: params.serviceAccount, keyId: oldKeyId }, 'service account key already deleted');
        return;
      }
      throw toRekeyError(error, 'iam.serviceAccountKeys.disable', `key ${oldKeyId} of service account ${params.serviceAccount}`);
    }
    ctx.logger.info({ serviceAccount: params.serviceAccount, keyId: oldKeyId }, 'service account key disabled');
  }

  /**
   * Disables the old key, then deletes it, as Google's key rotation guide orders it: a delete that
   * fails after the disable still leaves the key unusable.
   */
  async revoke(params: GcpServiceAccountKeyParams, oldKeyId: string, ctx: StepContext): Promise<void> {
    await this.disable(params, oldKeyId, ctx);
    await this.#deleteKey(params, oldKeyId, ctx);
  }

  /** Returns true once IAM no longer returns the old key. */
  async confirm(params: GcpServiceAccountKeyParams, oldKeyId: string, ctx: StepContext): Promise<boolean> {
    return (await this.#getKey(params, oldKeyId, ctx)) === null;
  }

  async close(): Promise<void> {
    await this.#auth.close();
  }

  async #mintError(params: GcpServiceAccountKeyParams, error: unknown, ctx: StepContext): Promise<RekeyError> {
    const account = params.serviceAccount;
    const google = googleApiErrorOf(error);
    if (isKeyCreationPolicyError(error)) {
      return new RekeyError(
        'PRECONDITION_FAILED',
        `an organisation policy (${KEY_CREATION_CONSTRAINTS[0]}) forbids creating keys for service account ${account}: ${quoteError(google?.message ?? error)}. ` +
          'Ask an organisation policy administrator to exempt its project, or give its workloads another kind of credential',
        { cause: error },
      );
    }

    // IAM reported the key limit as 429 "Maximum number of keys on account reached" and now
    // reports it as 400 "Precondition check failed.", so both are checked against the listed keys.
    const maybeQuota = google?.status === 'FAILED_PRECONDITION' || (google?.status === 'RESOURCE_EXHAUSTED' && /maximum number of keys/i.test(google.message));
    if (maybeQuota) {
      const keys = await this.#listUserManagedKeys(params, ctx).catch(() => null);
      if (keys === null || keys.length >= MAX_KEYS_PER_SERVICE_ACCOUNT) {
        return new RekeyError(
          'KEY_QUOTA',
          `service account ${account} already has the maximum of ${MAX_KEYS_PER_SERVICE_ACCOUNT} user-managed keys, so no replacement can be created: ${quoteError(google?.message ?? error)}`,
          { cause: error },
        );
      }
    }
    return toRekeyError(error, 'iam.serviceAccountKeys.create', `service account ${account}`);
  }

  async #listUserManagedKeys(params: GcpServiceAccountKeyParams, ctx: StepContext): Promise<ServiceAccountKey[]> {
    const url = this.#keysUrl(params);
    url.searchParams.set('keyTypes', 'USER_MANAGED');
    let listed: { keys?: KeyResource[] };
    try {
      listed = await requestJson<{ keys?: KeyResource[] }>(await this.#auth.adminClient(), { method: 'GET', url, signal: ctx.signal });
    } catch (error) {
      if (googleApiErrorOf(error)?.status === 'NOT_FOUND') {
        throw new RekeyError('TARGET_NOT_FOUND', `service account ${params.serviceAccount} does not exist: check serviceAccount in the inventory`, { cause: error });
      }
      throw toRekeyError(error, 'iam.serviceAccountKeys.list', `service account ${params.serviceAccount}`);
    }

    const keys: ServiceAccountKey[] = [];
    // The filter is applied here too, because the count must never include Google-managed keys.
    for (const key of listed.keys ?? []) {
      const keyId = keyIdOfName(key.name);
      if (keyId === null || key.keyType !== 'USER_MANAGED') continue;
      keys.push({ keyId, disabled: key.disabled === true, createdAt: key.validAfterTime === undefined ? 0 : Date.parse(key.validAfterTime) || 0 });
    }
    return keys;
  }

  /** Returns a key's state, or null when IAM does not have it. */
  async #getKey(params: GcpServiceAccountKeyParams, keyId: string, ctx: StepContext): Promise<ServiceAccountKey | null> {
    let key: KeyResource;
    try {
      key = await requestJson<KeyResource>(await this.#auth.adminClient(), { method: 'GET', url: this.#keyUrl(params, keyId), signal: ctx.signal });
    } catch (error) {
      if (googleApiErrorOf(error)?.status === 'NOT_FOUND') return null;
      throw toRekeyError(error, 'iam.serviceAccountKeys.get', `key ${keyId} of service account ${params.serviceAccount}`);
    }
    return { keyId, disabled: key.disabled === true, createdAt: key.validAfterTime === undefined ? 0 : Date.parse(key.validAfterTime) || 0 };
  }

  /** Deletes a key. A key that no longer exists counts as deleted. */
  async #deleteKey(params: GcpServiceAccountKeyParams, keyId: string, ctx: StepContext): Promise<void> {
    try {
      await requestJson(await this.#auth.adminClient(), { method: 'DELETE', url: this.#keyUrl(params, keyId), signal: ctx.signal });
    } catch (error) {
      if (googleApiErrorOf(error)?.status === 'NOT_FOUND') {
        ctx.logger.info({ serviceAccount: params.serviceAccount, keyId }, 'service account key already deleted');
        return;
      }
      throw toRekeyError(error, 'iam.serviceAccountKeys.delete', `key ${keyId} of service account ${params.serviceAccount}`);
    }
    ctx.logger.info({ serviceAccount: params.serviceAccount, keyId }, 'service account key deleted');
  }

  #keysUrl(params: GcpServiceAccountKeyParams): URL {
    const project = encodeURIComponent(params.project ?? '-');
    return new URL(`/v1/projects/${project}/serviceAccounts/${encodeURIComponent(params.serviceAccount)}/keys`, this.#auth.settings.iamEndpoint);
  }

  #keyUrl(params: GcpServiceAccountKeyParams, keyId: string, action = ''): URL {
    const keys = this.#keysUrl(params);
    return new URL(`${keys.pathname}/${encodeURIComponent(keyId)}${action}`, keys);
  }
}

/**
 * Creates the provider from rekey's GCP settings (see readGcpSettings) and the optional verify
 * overrides REKEY_GCP_VERIFY_WINDOW_MS and REKEY_GCP_VERIFY_INTERVAL_MS.
 */
export function createGcpServiceAccountKeyProvider(env: Env): GcpServiceAccountKeyProvider {
  const auth = new GcpAuth(readGcpSettings(env));
  const verifyPolicy: PollPolicy = {
    windowMs: readMilliseconds(env, VERIFY_WINDOW_ENV, DEFAULT_VERIFY_POLICY.windowMs),
    intervalMs: readMilliseconds(env, VERIFY_INTERVAL_ENV, DEFAULT_VERIFY_POLICY.intervalMs),
    consecutiveSuccesses: DEFAULT_VERIFY_POLICY.consecutiveSuccesses,
  };
  return new GcpServiceAccountKeyProvider(auth, verifyPolicy);
}
