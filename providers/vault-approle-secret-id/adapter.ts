import type { CredentialProvider, Env, Inspection, KnownKeys, StepContext } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { plainField, secretField, type Material } from '../../src/secret.js';
import { createVaultClient, PATH_SEGMENT_PATTERN, VaultApiError, type VaultClient } from '../vault-shared/index.js';
import { METADATA_CREDENTIAL_ID, METADATA_ROTATION_ID, METADATA_RUN_ID, VAULT_APPROLE_SECRET_ID_KIND, VERIFY_POLICY } from './constants.js';
import { validateParams, VAULT_APPROLE_SECRET_ID_PARAMS_SCHEMA, type VaultApproleSecretIdParams } from './schema.js';

const ACCESSOR_EXPRESSION = new RegExp(`^${PATH_SEGMENT_PATTERN}$`);

function checkAccessor(keyId: string): void {
  if (!ACCESSOR_EXPRESSION.test(keyId)) {
    throw new RekeyError('INVALID_PARAMETERS', `invalid key id ${JSON.stringify(keyId)}: a ${VAULT_APPROLE_SECRET_ID_KIND} key id is a secret ID accessor, such as a UUID`);
  }
}

function roleNotFound(role: string, mount: string): RekeyError {
  return new RekeyError('TARGET_NOT_FOUND', `AppRole role "${role}" not found at auth/${mount}: create the role or fix the credential's role and mount`);
}

/**
 * Rotates the secret ID of a HashiCorp Vault AppRole role. A role can have many secret IDs at
 * once, each with an accessor, so the replacement is created next to the old one and the old one
 * is destroyed by its accessor after the new one logged in. The key id is the accessor, which
 * identifies a secret ID without revealing it. The material is `role_id` (plain) and `secret_id`
 * (secret), the pair an AppRole login takes.
 */
export class VaultApproleSecretIdProvider implements CredentialProvider<VaultApproleSecretIdParams> {
  readonly kind = VAULT_APPROLE_SECRET_ID_KIND;
  /** An estimate well below a Vault cluster's usual request capacity; REKEY_CALL_LIMITS overrides it. */
  readonly callLimits = { concurrency: 16, perSecond: 100 };
  readonly family = 'minted' as const;
  readonly paramsSchema = VAULT_APPROLE_SECRET_ID_PARAMS_SCHEMA;
  readonly secretFields = ['secret_id'] as const;
  readonly verifyPolicy = VERIFY_POLICY;

  readonly #client: VaultClient;

  constructor(client: VaultClient) {
    this.#client = client;
  }

  /**
   * Lists the role's secret ID accessors. The current one is the accessor rekey last promoted if
   * it still exists, else the only accessor that rekey did not leave unpromoted. Orphans are the
   * listed accessors that rekey minted and never promoted. Every other accessor is a further key.
   */
  async inspect(params: VaultApproleSecretIdParams, known: KnownKeys, ctx: StepContext): Promise<Inspection> {
    const { role, mount } = validateParams(params);
    if ((await this.#client.readAppRoleRoleId(mount, role, ctx)) === null) throw roleNotFound(role, mount);
    const accessors = await this.#client.listAppRoleSecretIdAccessors(mount, role, ctx);

    const unpromoted = new Set(known.unpromotedKeyIds);
    const orphanKeyIds = accessors.filter((accessor) => unpromoted.has(accessor) && accessor !== known.currentKeyId);
    const candidates = accessors.filter((accessor) => !orphanKeyIds.includes(accessor));
    let currentKeyId: string | null = null;
    if (known.currentKeyId !== null && accessors.includes(known.currentKeyId)) currentKeyId = known.currentKeyId;
    else if (candidates.length === 1) currentKeyId = candidates[0] ?? null;
    else if (candidates.length > 1) {
      ctx.logger.warn({ role, mount, accessors: candidates }, 'inspect: the role has several secret IDs and none is known as current');
    }

    const otherKeyIds = candidates.filter((accessor) => accessor !== currentKeyId);
    return { currentKeyId, orphanKeyIds, otherKeyIds };
  }

  async mint(params: VaultApproleSecretIdParams, ctx: StepContext): Promise<Material> {
    const { role, mount } = validateParams(params);
    const roleId = await this.#client.readAppRoleRoleId(mount, role, ctx);
    if (roleId === null) throw roleNotFound(role, mount);

    const created = await this.#client.createAppRoleSecretId(mount, role, {
      [METADATA_RUN_ID]: ctx.runId, [METADATA_ROTATION_ID]: ctx.rotationId, [METADATA_CREDENTIAL_ID]: ctx.credentialId,
    }, ctx);
    ctx.logger.info({ role, mount, keyId: created.accessor }, 'mint: secret ID created');
    return { keyId: created.accessor, fields: { role_id: roleId, secret_id: created.secretId } };
  }

  /**
   * Logs in with the new pair and revokes the token that the login returned, so that verify
   * leaves no live token behind. A 412 from a performance standby that has not replicated the
   * secret ID yet is NOT_READY, and a rejected pair is VERIFY_FAILED. A secret ID with a limited
   * number of uses is looked up by value instead, because a login would use one up.
   */
  async verify(params: VaultApproleSecretIdParams, material: Material, ctx: StepContext): Promise<void> {
    const { role, mount } = validateParams(params);
    const roleId = plainField(material, 'role_id');
    const secretId = secretField(material, 'secret_id');

    const info = await this.#client.lookupAppRoleSecretIdAccessor(mount, role, material.keyId, ctx);
    if (info !== null && info.numUses > 0) {
      const byValue = await this.#client.lookupAppRoleSecretId(mount, role, secretId, ctx);
      if (byValue?.accessor !== material.keyId) {
        throw new RekeyError('VERIFY_FAILED', `Vault has no record of the new secret ID (key ${material.keyId}) of AppRole role "${role}" at auth/${mount}`);
      }
      ctx.logger.info({ role, mount, keyId: material.keyId, numUses: info.numUses }, 'verify: secret ID found by value, because a login would use up one of its uses');
      return;
    }

    let login;
    try {
      login = await this.#client.logInWithAppRole(mount, roleId, secretId, ctx);
    } catch (error) {
      if (!(error instanceof VaultApiError)) throw error;
      const subject = `the new secret ID (key ${material.keyId}) of AppRole role "${role}" at auth/${mount}/login`;
      if (error.httpStatus === 412) throw new RekeyError('NOT_READY', `Vault has not replicated ${subject} yet: ${error.message}`, { cause: error });
      if (error.httpStatus === 400 || error.httpStatus === 403) {
        throw new RekeyError('VERIFY_FAILED', `Vault rejected ${subject} (${error.vaultErrors.join('; ') || `HTTP ${error.httpStatus}`})`, { cause: error });
      }
      throw error;
    }

    await this.#client.revokeToken(login.token, ctx).catch((error: unknown) => {
      ctx.logger.warn({ role, keyId: material.keyId, error: error instanceof Error ? error.message : String(error) }, 'verify: could not revoke the login token, which expires with its TTL');
    });
    ctx.logger.info({ role, mount, keyId: material.keyId }, 'verify: logged in with the new secret ID');
  }

  async discard(params: VaultApproleSecretIdParams, keyId: string, ctx: StepContext): Promise<void> {
    await this.#destroy(params, keyId, 'discard', ctx);
  }

  async revoke(params: VaultApproleSecretIdParams, oldKeyId: string, ctx: StepContext): Promise<void> {
    await this.#destroy(params, oldKeyId, 'revoke', ctx);
  }

  /** Returns true once Vault no longer has the accessor or its role. */
  async confirm(params: VaultApproleSecretIdParams, oldKeyId: string, ctx: StepContext): Promise<boolean> {
    const { role, mount } = validateParams(params);
    checkAccessor(oldKeyId);
    if ((await this.#client.readAppRoleRoleId(mount, role, ctx)) === null) return true;
    return (await this.#client.lookupAppRoleSecretIdAccessor(mount, role, oldKeyId, ctx)) === null;
  }

  async close(): Promise<void> {
    this.#client.close();
  }

  /**
   * Destroys a secret ID by its accessor. "Already gone" is success, and Vault fails a destroy of
   * an unknown accessor with a 500, so the accessor is looked up before and, on failure, after.
   */
  async #destroy(params: VaultApproleSecretIdParams, keyId: string, step: 'discard' | 'revoke', ctx: StepContext): Promise<void> {
    const { role, mount } = validateParams(params);
    checkAccessor(keyId);
    // A deleted role takes its secret IDs with it, and Vault fails lookups on it with a 500.
    if ((await this.#client.readAppRoleRoleId(mount, role, ctx)) === null) {
      ctx.logger.info({ role, mount, keyId }, `${step}: role no longer exists`);
      return;
    }
    if ((await this.#client.lookupAppRoleSecretIdAccessor(mount, role, keyId, ctx)) === null) {
      ctx.logger.info({ role, mount, keyId }, `${step}: secret ID already destroyed`);
      return;
    }

    try {
      await this.#client.destroyAppRoleSecretIdAccessor(mount, role, keyId, ctx);
    } catch (error) {
      if ((await this.#client.lookupAppRoleSecretIdAccessor(mount, role, keyId, ctx)) !== null) throw error;
    }
    ctx.logger.info({ role, mount, keyId }, `${step}: secret ID destroyed`);
  }
}

/** Creates the provider with a Vault client configured by the environment (see readVaultSettings). */
export function createVaultApproleSecretIdProvider(env: Env): VaultApproleSecretIdProvider {
  return new VaultApproleSecretIdProvider(createVaultClient(env));
}
