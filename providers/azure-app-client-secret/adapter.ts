import type { CredentialProvider, Env, Inspection, KnownKeys, PollPolicy, StepContext } from '../../src/contracts.js';
import { quoteError, RekeyError } from '../../src/errors.js';
import { plainField, secretField, SecretValue, type Material } from '../../src/secret.js';
import {
  aadstsCodes,
  createAdminCredential,
  createSecretCredential,
  GraphApiError,
  GraphClient,
  identityErrorCode,
  quoteIdentityError,
  readAzureSettings,
  type AzureSettings,
} from '../azure-shared/index.js';
import {
  AZURE_APP_CLIENT_SECRET_KIND,
  CLIENT_ID_FIELD,
  CLIENT_SECRET_FIELD,
  DEFAULT_SECRET_LIFETIME_DAYS,
  DEFAULT_VERIFY_POLICY,
  SECRET_LIMIT_ERRORS,
  SECRET_NOT_ACCEPTED_CODES,
  TENANT_ID_FIELD,
} from './constants.js';
import {
  classifyPasswords,
  describeApplication,
  mintedDisplayName,
  secretLimitOf,
  type ApplicationView,
  type PasswordCredential,
} from './passwords.js';
import { AZURE_APP_CLIENT_SECRET_PARAMS_SCHEMA, type AzureAppClientSecretParams } from './schema.js';

const DAY_MS = 86_400_000;

/** Builds the Graph path of an application addressed by its application (client) id. */
function applicationPath(appId: string): string {
  return `/v1.0/applications(appId='${encodeURIComponent(appId)}')`;
}

function parseApplication(body: unknown, appId: string): ApplicationView {
  const raw = body as Partial<Record<keyof ApplicationView, unknown>> | null;
  if (typeof raw?.id !== 'string' || !Array.isArray(raw.passwordCredentials)) {
    throw new RekeyError('INTERNAL', `Graph returned no application object for appId ${appId}`);
  }
  const passwords: PasswordCredential[] = [];
  for (const item of raw.passwordCredentials as Array<Record<string, unknown>>) {
    if (typeof item.keyId !== 'string') continue;
    passwords.push({
      keyId: item.keyId,
      displayName: typeof item.displayName === 'string' ? item.displayName : null,
      startDateTime: typeof item.startDateTime === 'string' ? item.startDateTime : null,
      endDateTime: typeof item.endDateTime === 'string' ? item.endDateTime : null,
    });
  }
  return {
    id: raw.id,
    appId: typeof raw.appId === 'string' ? raw.appId : appId,
    displayName: typeof raw.displayName === 'string' ? raw.displayName : appId,
    signInAudience: typeof raw.signInAudience === 'string' ? raw.signInAudience : null,
    passwordCredentials: passwords,
  };
}

/** True for a failure that may have happened after Graph created the secret: a 5xx, a timeout or a lost connection. */
function mayHaveCreated(error: unknown): boolean {
  if (!(error instanceof GraphApiError)) return false;
  return error.httpStatus === null || error.httpStatus >= 500;
}

/** Returns the limit a TooManyAppPasswords message names ("a maximum of 2 passwords"), or null. */
function limitInMessage(message: string | null): number | null {
  const match = /maximum of (\d+)/i.exec(message ?? '');
  return match === null ? null : Number(match[1]);
}

/**
 * A client secret (password credential) of a Microsoft Entra ID application. Graph creates the
 * secret (minted family) with addPassword and returns its value once. Verify signs in with the
 * new secret through ClientSecretCredential, and revoke removes the old one with removePassword.
 * Entra ID has no disabled state for a secret, so scheduled mode keeps the old secret valid
 * until its revoke after the grace period.
 */
export class AzureAppClientSecretProvider implements CredentialProvider<AzureAppClientSecretParams> {
  readonly kind = AZURE_APP_CLIENT_SECRET_KIND;
  readonly family = 'minted' as const;
  /** A keyId is a GUID that appears nowhere in the secret, so no scanner reports it alone. */
  readonly keyIdIsPublic = false;
  readonly paramsSchema = AZURE_APP_CLIENT_SECRET_PARAMS_SCHEMA;
  readonly secretFields = [CLIENT_SECRET_FIELD] as const;
  readonly verifyPolicy: PollPolicy;
  /**
   * Graph allows an application 3,000 identity writes per 150 s in a small tenant (Graph
   * throttling limits); rekey keeps far below. The timeout leaves room for a mint that waits out
   * MAX_THROTTLE_WAIT_MS of Retry-After. REKEY_CALL_LIMITS overrides these.
   */
  readonly callLimits = { concurrency: 4, perSecond: 10, timeoutMs: 180_000 };

  readonly #settings: AzureSettings;
  readonly #graph: GraphClient;

  constructor(settings: AzureSettings, verifyPolicy: PollPolicy) {
    this.#settings = settings;
    this.verifyPolicy = verifyPolicy;
    this.#graph = new GraphClient(settings, createAdminCredential(settings));
  }

  async inspect(params: AzureAppClientSecretParams, known: KnownKeys, ctx: StepContext): Promise<Inspection> {
    const application = await this.#getApplication(params.appId, ctx);
    const inspection = classifyPasswords(application, known, secretLimitOf(application, params.maxSecrets));
    ctx.logger.debug({ appId: params.appId, keyIds: application.passwordCredentials.map((password) => password.keyId), ...inspection }, 'client secrets inspected');
    return inspection;
  }

  async mint(params: AzureAppClientSecretParams, ctx: StepContext): Promise<Material> {
    const tenantId = this.#tenantOf(params);
    const displayName = mintedDisplayName(ctx.rotationId);
    await this.#removeLost(params.appId, displayName, ctx);

    // Graph sets startDateTime to its own clock's now when the request leaves it out, so a worker
    // whose clock runs ahead cannot create a secret that is not valid yet.
    const endDateTime = new Date(Date.now() + (params.secretLifetimeDays ?? DEFAULT_SECRET_LIFETIME_DAYS) * DAY_MS).toISOString();
    const call = {
      method: 'POST' as const,
      path: `${applicationPath(params.appId)}/addPassword`,
      body: { passwordCredential: { displayName, endDateTime } },
      description: `addPassword on application ${params.appId}`,
    };

    let created: unknown;
    try {
      created = await this.#graph.send(call, ctx);
    } catch (error) {
      throw await this.#mintError(params, displayName, error, ctx);
    }

    const { keyId, secretText } = (created ?? {}) as { keyId?: unknown; secretText?: unknown };
    if (typeof keyId !== 'string' || typeof secretText !== 'string') {
      throw new RekeyError('INTERNAL', `Graph addPassword on application ${params.appId} returned no keyId or secretText`);
    }
    ctx.logger.info({ appId: params.appId, keyId }, 'client secret minted');
    return {
      keyId,
      fields: {
        [TENANT_ID_FIELD]: tenantId,
        [CLIENT_ID_FIELD]: params.appId,
        [CLIENT_SECRET_FIELD]: SecretValue.fromString(secretText),
      },
    };
  }

  async verify(params: AzureAppClientSecretParams, material: Material, ctx: StepContext): Promise<void> {
    // The tenant and application come from the inventory, never from the material: after a resume
    // the material is read back from a store, and a secret of another application must not pass.
    const tenantId = this.#tenantOf(params);
    const clientId = params.appId;
    if (plainField(material, TENANT_ID_FIELD) !== tenantId || plainField(material, CLIENT_ID_FIELD) !== clientId) {
      throw new RekeyError('VERIFY_FAILED', `client secret ${material.keyId} is stored for another tenant or application than ${clientId} in tenant ${tenantId}`);
    }
    const secret = secretField(material, CLIENT_SECRET_FIELD);
    const credential = createSecretCredential(this.#settings, tenantId, clientId, secret);

    try {
      await credential.getToken(this.#settings.graphScope, { abortSignal: ctx.signal });
    } catch (error) {
      const codes = aadstsCodes(error);
      const quoted = quoteIdentityError(error, [secret]);
      if (codes.some((code) => SECRET_NOT_ACCEPTED_CODES.has(code))) throw await this.#rejectionError(params, material.keyId, quoted, ctx);
      // The identity library's error is quoted (scrubbed) but not attached, so nothing that
      // serializes the cause chain can reach the request that carried the secret.
      if (codes.length > 0) {
        throw new RekeyError('VERIFY_FAILED', `Entra ID rejects client secret ${material.keyId} of application ${clientId}: ${quoted}`);
      }
      throw new RekeyError(identityErrorCode(error), `signing in with client secret ${material.keyId} of application ${clientId} failed: ${quoted}`);
    }
    ctx.logger.debug({ appId: clientId, keyId: material.keyId }, 'client secret accepted by Entra ID');
  }

  /**
   * Decides what a rejected new secret means. Entra ID returns AADSTS7000215 both while a secret
   * propagates and for a secret that does not exist. So the rejection is NOT_READY while the
   * secret is listed and younger than the verify window. Once it is gone or older, the rejection
   * is VERIFY_FAILED, because the engine's retries could not help then.
   */
  async #rejectionError(params: AzureAppClientSecretParams, keyId: string, quoted: string, ctx: StepContext): Promise<RekeyError> {
    const application = await this.#getApplication(params.appId, ctx);
    const password = application.passwordCredentials.find((candidate) => candidate.keyId === keyId);
    if (password === undefined) {
      return new RekeyError('VERIFY_FAILED', `client secret ${keyId} of ${describeApplication(application)} was removed, so Entra ID rejects it: ${quoted}`);
    }
    const startMs = password.startDateTime === null ? Number.NaN : Date.parse(password.startDateTime);
    const ageMs = Number.isNaN(startMs) ? 0 : Date.now() - startMs;
    if (ageMs + this.verifyPolicy.intervalMs > this.verifyPolicy.windowMs) {
      return new RekeyError(
        'VERIFY_FAILED',
        `Entra ID still rejects client secret ${keyId} of ${describeApplication(application)} ${ageMs} ms after its creation, ` +
          `past the verify window of ${this.verifyPolicy.windowMs} ms: ${quoted}`,
      );
    }
    return new RekeyError('NOT_READY', `Entra ID rejects client secret ${keyId} of ${describeApplication(application)} yet (${ageMs} ms after its creation): ${quoted}`);
  }

  async discard(params: AzureAppClientSecretParams, keyId: string, ctx: StepContext): Promise<void> {
    await this.#removePassword(params.appId, keyId, ctx);
  }

  async revoke(params: AzureAppClientSecretParams, oldKeyId: string, ctx: StepContext): Promise<void> {
    await this.#removePassword(params.appId, oldKeyId, ctx);
  }

  /**
   * Returns true once Graph no longer lists the old secret. Entra ID may accept a removed secret
   * for a short while after that, and the old value is not available here to prove otherwise.
   */
  async confirm(params: AzureAppClientSecretParams, oldKeyId: string, ctx: StepContext): Promise<boolean> {
    try {
      const application = await this.#getApplication(params.appId, ctx);
      return !application.passwordCredentials.some((password) => password.keyId === oldKeyId);
    } catch (error) {
      if (error instanceof RekeyError && error.code === 'TARGET_NOT_FOUND') return true;
      throw error;
    }
  }

  #tenantOf(params: AzureAppClientSecretParams): string {
    const tenantId = params.tenantId ?? this.#settings.tenantId ?? this.#settings.credential.tenantId;
    if (tenantId === undefined) {
      throw new RekeyError('INVALID_PARAMETERS', `application ${params.appId} has no tenant: set tenantId in its params or REKEY_AZURE_TENANT_ID`);
    }
    return tenantId;
  }

  async #getApplication(appId: string, ctx: StepContext): Promise<ApplicationView> {
    try {
      const body = await this.#graph.send({
        method: 'GET',
        path: `${applicationPath(appId)}?$select=id,appId,displayName,signInAudience,passwordCredentials`,
        description: `get application ${appId}`,
      }, ctx);
      return parseApplication(body, appId);
    } catch (error) {
      if (error instanceof GraphApiError && error.httpStatus === 404) {
        throw new RekeyError(
          'TARGET_NOT_FOUND',
          `application ${appId} not found in Graph: check appId in the inventory, and that rekey's identity owns the application`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /**
   * Removes secrets that an earlier mint of this rotation created but whose addPassword response
   * was lost. Their values exist nowhere, so they only use up the application's secret limit.
   */
  async #removeLost(appId: string, displayName: string, ctx: StepContext): Promise<void> {
    const application = await this.#getApplication(appId, ctx);
    for (const password of application.passwordCredentials.filter((candidate) => candidate.displayName === displayName)) {
      ctx.logger.warn({ appId, keyId: password.keyId }, 'removing a client secret of this rotation whose addPassword response was lost');
      await this.#removePassword(appId, password.keyId, ctx);
    }
  }

  /** Converts a failed addPassword into the error the mint step throws, removing a secret it may have created. */
  async #mintError(params: AzureAppClientSecretParams, displayName: string, error: unknown, ctx: StepContext): Promise<unknown> {
    if (error instanceof GraphApiError && error.graphCode !== null && SECRET_LIMIT_ERRORS.has(error.graphCode)) {
      const limit = limitInMessage(error.graphMessage);
      return new RekeyError(
        'KEY_QUOTA',
        `application ${params.appId} holds as many client secrets as Entra ID allows${limit === null ? '' : ` (a maximum of ${limit})`}, so no replacement can be created: ` +
          `${error.message}. Remove an unused secret by hand, or set maxSecrets so that rekey stops before minting`,
        { cause: error },
      );
    }
    if (!mayHaveCreated(error)) return error;

    // addPassword is not idempotent: after a 5xx or a lost connection the secret may exist, but
    // its value was never received. Sending addPassword again could leave two secrets, so the
    // one this rotation created is found by its display name and removed first.
    ctx.logger.warn({ appId: params.appId, error: (error as RekeyError).message }, 'addPassword failed after it may have created a secret; looking for it');
    let outcome = 'Any secret it created was removed, and the next attempt mints again';
    try {
      await this.#removeLost(params.appId, displayName, ctx);
    } catch (cleanupError) {
      outcome = 'The search for a secret it created failed, and the next attempt repeats it before minting';
      ctx.logger.warn({ appId: params.appId, error: quoteError(cleanupError) }, 'could not look for a secret of the failed addPassword; the next mint attempt looks again');
    }
    return new RekeyError('UNAVAILABLE', `${(error as RekeyError).message}. ${outcome}`, { cause: error });
  }

  /** Removes a secret. A secret or application that no longer exists counts as removed. */
  async #removePassword(appId: string, keyId: string, ctx: StepContext): Promise<void> {
    try {
      await this.#graph.send({
        method: 'POST',
        path: `${applicationPath(appId)}/removePassword`,
        body: { keyId },
        description: `removePassword ${keyId} on application ${appId}`,
      }, ctx);
    } catch (error) {
      // Graph does not document its response for an unknown keyId, so any 400 or 404 is checked
      // against the application's list before it counts as "already gone".
      if (!(error instanceof GraphApiError) || (error.httpStatus !== 400 && error.httpStatus !== 404)) throw error;
      const removed = await this.confirm({ appId }, keyId, ctx);
      if (!removed) throw error;
      ctx.logger.info({ appId, keyId }, 'client secret already removed');
      return;
    }
    ctx.logger.info({ appId, keyId }, 'client secret removed');
  }
}

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
 * Creates the provider from rekey's Azure settings (see readAzureSettings) and the optional
 * verify overrides REKEY_AZURE_VERIFY_WINDOW_MS and REKEY_AZURE_VERIFY_INTERVAL_MS.
 */
export function createAzureAppClientSecretProvider(env: Env): AzureAppClientSecretProvider {
  const verifyPolicy: PollPolicy = {
    windowMs: readMilliseconds(env, 'REKEY_AZURE_VERIFY_WINDOW_MS', DEFAULT_VERIFY_POLICY.windowMs),
    intervalMs: readMilliseconds(env, 'REKEY_AZURE_VERIFY_INTERVAL_MS', DEFAULT_VERIFY_POLICY.intervalMs),
    consecutiveSuccesses: DEFAULT_VERIFY_POLICY.consecutiveSuccesses,
  };
  return new AzureAppClientSecretProvider(readAzureSettings(env), verifyPolicy);
}
