import type { CredentialProvider, Env, Inspection, KnownKeys, StepContext } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { secretField, SecretValue, type Material } from '../../src/secret.js';
import { GcpAuth, readGcpSettings, toRekeyError } from '../gcp-shared/index.js';
import {
  ACCESS_TOKEN_FIELD,
  DEFAULT_LIFETIME_SECONDS,
  DEFAULT_SCOPES,
  EXPIRE_TIME_FIELD,
  GCP_ACCESS_TOKEN_KIND,
  KEY_ID_DIGEST_LENGTH,
  KEY_ID_PREFIX,
  SERVICE_ACCOUNT_FIELD,
  TOKEN_TYPE_FIELD,
  VERIFY_POLICY,
} from './constants.js';
import { GCP_ACCESS_TOKEN_PARAMS_SCHEMA, type GcpAccessTokenParams } from './schema.js';

/** Converts a protobuf Timestamp (seconds as a number, string or Long) into an RFC 3339 time. */
function rfc3339(seconds: unknown): string {
  const value = Number(typeof seconds === 'object' && seconds !== null ? String(seconds) : seconds);
  return Number.isFinite(value) ? new Date(value * 1000).toISOString() : '';
}

/**
 * A short-lived OAuth access token of a service account, minted through IAM Credentials
 * `generateAccessToken` as rekey's admin identity (which needs the Token Creator role on the
 * account) and written to the stores for consumers that accept a bearer token.
 *
 * Family `minted`: Google creates the token and rekey cannot choose its value, so the engine must
 * stage it the moment it exists, and there is nothing to apply to a target.
 *
 * IAM Credentials has no call that revokes or lists access tokens, so discard and revoke do nothing
 * and a token stays valid until it expires. The rotation must therefore be triggered
 * more often than `lifetimeSeconds`, or consumers will read an expired token.
 */
export class GcpAccessTokenProvider implements CredentialProvider<GcpAccessTokenParams> {
  readonly kind = GCP_ACCESS_TOKEN_KIND;
  readonly family = 'minted' as const;
  readonly paramsSchema = GCP_ACCESS_TOKEN_PARAMS_SCHEMA;
  readonly secretFields = [ACCESS_TOKEN_FIELD] as const;
  readonly verifyPolicy = VERIFY_POLICY;

  readonly #auth: GcpAuth;

  constructor(auth: GcpAuth) {
    this.#auth = auth;
  }

  /**
   * Reports rekey's record, because IAM Credentials lists no access tokens. Tokens that rekey minted and
   * never promoted are orphans: discarding them only clears them from the record.
   */
  async inspect(_params: GcpAccessTokenParams, known: KnownKeys, _ctx: StepContext): Promise<Inspection> {
    return { currentKeyId: known.currentKeyId, orphanKeyIds: known.unpromotedKeyIds.filter((keyId) => keyId !== known.currentKeyId) };
  }

  async mint(params: GcpAccessTokenParams, ctx: StepContext): Promise<Material> {
    const lifetimeSeconds = params.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
    const client = await this.#auth.iamCredentials();
    let response;
    try {
      [response] = await client.generateAccessToken({
        name: `projects/-/serviceAccounts/${params.serviceAccount}`,
        scope: params.scopes ?? DEFAULT_SCOPES,
        lifetime: { seconds: lifetimeSeconds },
      });
    } catch (error) {
      throw toRekeyError(error, 'iam.serviceAccounts.getAccessToken', `service account ${params.serviceAccount}`);
    }
    if (typeof response.accessToken !== 'string' || response.accessToken === '') {
      throw new RekeyError('INTERNAL', `generateAccessToken for service account ${params.serviceAccount} returned no access token`);
    }

    const token = SecretValue.fromString(response.accessToken);
    const keyId = `${KEY_ID_PREFIX}${ctx.keyDigest(response.accessToken).slice(0, KEY_ID_DIGEST_LENGTH)}`;
    const expireTime = rfc3339(response.expireTime?.seconds);
    ctx.logger.info({ serviceAccount: params.serviceAccount, keyId, expireTime }, 'access token minted');
    return {
      keyId,
      fields: {
        [ACCESS_TOKEN_FIELD]: token,
        [TOKEN_TYPE_FIELD]: 'Bearer',
        [EXPIRE_TIME_FIELD]: expireTime,
        [SERVICE_ACCOUNT_FIELD]: params.serviceAccount,
      },
    };
  }

  /** Asks the tokeninfo endpoint whether the token is valid and carries the requested scopes. */
  async verify(params: GcpAccessTokenParams, material: Material, ctx: StepContext): Promise<void> {
    const token = secretField(material, ACCESS_TOKEN_FIELD);
    const { httpStatus, body } = await this.#auth.tokenInfo(token, ctx.signal);
    if (httpStatus === 429 || httpStatus >= 500) {
      // A busy endpoint proves nothing about the token: the engine polls on and keeps it staged.
      const code = httpStatus === 429 ? 'THROTTLED' : 'UNAVAILABLE';
      throw new RekeyError(code, `the tokeninfo endpoint could not check access token ${material.keyId} of ${params.serviceAccount}: HTTP ${httpStatus}`);
    }
    if (httpStatus !== 200) {
      const reason = typeof body.error_description === 'string' ? body.error_description.slice(0, 200) : `HTTP ${httpStatus}`;
      throw new RekeyError('VERIFY_FAILED', `the tokeninfo endpoint rejects access token ${material.keyId} of ${params.serviceAccount}: ${reason}`);
    }

    const granted = typeof body.scope === 'string' ? body.scope.split(' ') : [];
    const missing = (params.scopes ?? DEFAULT_SCOPES).filter((scope) => !granted.includes(scope));
    if (missing.length > 0) {
      throw new RekeyError('VERIFY_FAILED', `access token ${material.keyId} of ${params.serviceAccount} lacks the scopes ${missing.join(', ')}`);
    }
    if (typeof body.email === 'string' && body.email !== params.serviceAccount) {
      throw new RekeyError('VERIFY_FAILED', `access token ${material.keyId} belongs to ${body.email}, not to service account ${params.serviceAccount}`);
    }
    ctx.logger.debug({ serviceAccount: params.serviceAccount, keyId: material.keyId, expiresIn: body.expires_in }, 'access token accepted by tokeninfo');
  }

  /** Does nothing, because rekey cannot revoke an access token. The token expires by itself. */
  async discard(params: GcpAccessTokenParams, keyId: string, ctx: StepContext): Promise<void> {
    ctx.logger.info({ serviceAccount: params.serviceAccount, keyId }, 'access token left to expire, because rekey cannot revoke it');
  }

  /** Does nothing, because rekey cannot revoke an access token. The token expires by itself. */
  async revoke(params: GcpAccessTokenParams, oldKeyId: string, ctx: StepContext): Promise<void> {
    ctx.logger.info({ serviceAccount: params.serviceAccount, keyId: oldKeyId }, 'access token left to expire, because rekey cannot revoke it');
  }

  async close(): Promise<void> {
    await this.#auth.close();
  }
}

/** Creates the provider from rekey's GCP settings (see readGcpSettings). */
export function createGcpAccessTokenProvider(env: Env): GcpAccessTokenProvider {
  return new GcpAccessTokenProvider(new GcpAuth(readGcpSettings(env)));
}
