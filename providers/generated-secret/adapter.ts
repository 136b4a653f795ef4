import type { CredentialProvider, Inspection, KnownKeys, StepContext } from '../../src/contracts.js';
import { SecretValue, type Material } from '../../src/secret.js';
import { DEFAULT_SECRET_BYTES, GENERATED_SECRET_KIND } from './constants.js';
import { GENERATED_SECRET_PARAMS_SCHEMA, type GeneratedSecretParams } from './schema.js';

/** Derives a key id from a secret: a prefix of its keyed digest, which reveals nothing of it. */
function keyIdOf(secret: SecretValue, ctx: Pick<StepContext, 'keyDigest'>): string {
  return `hmac:${ctx.keyDigest(secret.reveal()).slice(0, 16)}`;
}

/**
 * A secret that rekey generates and that no service checks: a shared API token, a signing key,
 * a webhook secret. Its consumers read it from the stores, so rotating it means generating a new
 * value, staging it and promoting it. There is no target to apply it to, nothing to verify it
 * against and nothing to revoke at a provider. The stores keep the previous version.
 */
export class GeneratedSecretProvider implements CredentialProvider<GeneratedSecretParams> {
  readonly kind = GENERATED_SECRET_KIND;
  /** Local work only: no remote service to protect, so the limits only bound memory. */
  readonly callLimits = { concurrency: 64, perSecond: 10_000 };
  readonly family = 'set' as const;
  readonly paramsSchema = GENERATED_SECRET_PARAMS_SCHEMA;
  readonly secretFields = ['secret'] as const;
  readonly verifyPolicy = { windowMs: 0, intervalMs: 0, consecutiveSuccesses: 1 };

  async inspect(_params: GeneratedSecretParams, known: KnownKeys): Promise<Inspection> {
    return { currentKeyId: known.currentKeyId, orphanKeyIds: [] };
  }

  generate(params: GeneratedSecretParams, ctx: StepContext): Material {
    const secret = SecretValue.generate(params.bytes ?? DEFAULT_SECRET_BYTES);
    return { keyId: keyIdOf(secret, ctx), fields: { secret } };
  }

  async apply(): Promise<void> {}

  async verify(): Promise<void> {}

  async discard(): Promise<void> {}

  async revoke(): Promise<void> {}
}

export function createGeneratedSecretProvider(): GeneratedSecretProvider {
  return new GeneratedSecretProvider();
}
