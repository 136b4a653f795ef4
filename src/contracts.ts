import type { Logger } from 'pino';
import type { CallLimits } from './call-limits.js';
import type { Material, SecretValue } from './secret.js';

/**
 * Step names, shared by functions, job names, log messages and audit event types. `generate` and
 * `apply` belong to the set family, and `mint` to the minted family. `discard` removes a
 * replacement that failed verification or an orphan of an earlier attempt.
 */
export const STEPS = [
  'inspect', 'discard', 'mint', 'generate', 'stage', 'apply', 'verify', 'promote', 'disable', 'revoke', 'confirm',
] as const;
export type StepName = (typeof STEPS)[number];

export type RotationMode = 'scheduled' | 'incident';

/**
 * `minted`: the provider creates the value (AWS access keys), so rekey stages it the moment it
 * exists. `set`: rekey generates the value (passwords), so it stages it before applying it.
 */
export type CredentialFamily = 'minted' | 'set';

/** Environment variables as the process receives them; providers read their admin settings here. */
export type Env = Readonly<Record<string, string | undefined>>;

/** The context every provider and store call receives. */
export interface StepContext {
  runId: string;
  /** Unique per rotation of one credential; stores use it as their idempotency token. */
  rotationId: string;
  environment: string;
  credentialId: string;
  mode: RotationMode;
  logger: Logger;
  signal: AbortSignal;
  /**
   * Computes a keyed digest (HMAC-SHA256, hex, with rekey's fingerprint key) of text derived
   * from a secret. Providers build key ids from it, so a key id shown in a log, the API or the
   * audit trail never lets anyone check password guesses against it offline.
   */
  keyDigest(text: string): string;
}

/** rekey's own record of a credential's keys, from earlier rotations. */
export interface KnownKeys {
  /** The key id that rekey last promoted, if it ever rotated this credential. */
  currentKeyId: string | null;
  /** Key ids that rekey minted or applied for this credential and never promoted. */
  unpromotedKeyIds: readonly string[];
}

export interface Inspection {
  /** The key in use now: the one this rotation replaces and then revokes. Null if none exists. */
  currentKeyId: string | null;
  /**
   * Keys left by an earlier, unfinished attempt of rekey that the engine may discard before it
   * mints. A provider lists only keys from `known.unpromotedKeyIds`, never a key rekey did not mint.
   */
  orphanKeyIds: string[];
  /**
   * Other keys that also let the principal in: a password waiting for its scheduled revoke, one
   * added by hand. Incident mode revokes them with the old key, because a compromise exposes every
   * key of the principal; scheduled mode leaves them and reports them.
   */
  otherKeyIds?: string[];
}

/** Bounds of the verify and confirm polling loops. */
export interface PollPolicy {
  /** Total time the engine keeps trying before it gives up, in milliseconds. */
  windowMs: number;
  /** Pause between two attempts, in milliseconds. */
  intervalMs: number;
  /** Successes in a row required before the result counts. */
  consecutiveSuccesses: number;
}

/**
 * One kind of credential. Every method is idempotent: the engine may call it again after a crash
 * or a retry with the same arguments. Methods throw `RekeyError`s whose code states whether a
 * retry can help. Their messages carry ids, never values.
 */
export interface CredentialProvider<Params = Record<string, unknown>> {
  readonly kind: string;
  readonly family: CredentialFamily;
  /** JSON Schema of the credential's `params` in the inventory. */
  readonly paramsSchema: Record<string, unknown>;
  /** Names of the material fields that are secret; the other fields are stored in plain text. */
  readonly secretFields: readonly string[];
  readonly verifyPolicy: PollPolicy;
  /**
   * True when a key id is an identifier a scanner can report on its own (an AWS access key id),
   * so rekey indexes the ids it reads to match leak reports that carry no secret value.
   */
  readonly keyIdIsPublic?: boolean;
  /** Limits on rekey's calls to this provider; unset fields take DEFAULT_CALL_LIMITS. */
  readonly callLimits?: Partial<CallLimits>;

  /**
   * Reads the provider's state without changing it. Throws KEY_QUOTA when no replacement can be
   * created even after the listed orphans are discarded, naming the principal and the key ids.
   */
  inspect(params: Params, known: KnownKeys, ctx: StepContext): Promise<Inspection>;

  /** Minted family: creates the replacement and returns it. */
  mint?(params: Params, ctx: StepContext): Promise<Material>;

  /** Set family: generates a replacement locally, touching nothing. */
  generate?(params: Params, ctx: StepContext): Material;

  /** Set family: applies a generated replacement to the target. Applying the same material twice is harmless. */
  apply?(params: Params, material: Material, ctx: StepContext): Promise<void>;

  /**
   * Proves the replacement works against the real service. Throws NOT_READY while the provider
   * may still be propagating it (the engine retries within `verifyPolicy`), VERIFY_FAILED when it
   * cannot work.
   */
  verify(params: Params, material: Material, ctx: StepContext): Promise<void>;

  /** Removes a replacement that rekey created (after a failed verify, or an orphan). "Already gone" is success. */
  discard(params: Params, keyId: string, ctx: StepContext): Promise<void>;

  /** Makes the old credential unusable without deleting it, where the provider has such a state. */
  disable?(params: Params, oldKeyId: string, ctx: StepContext): Promise<void>;

  /** Deletes the old credential. "Already gone" is success. */
  revoke(params: Params, oldKeyId: string, ctx: StepContext): Promise<void>;

  /** Returns true once the provider no longer lists or accepts the old credential. */
  confirm?(params: Params, oldKeyId: string, ctx: StepContext): Promise<boolean>;

  /** Closes connections and clients the provider opened. */
  close?(): Promise<void>;
}

/** A replacement written to a store as the pending version of one rotation. */
export interface StagedVersion {
  rotationId: string;
  keyId: string;
  value: SecretValue;
}

export interface StoreDescription {
  /** The key id of the version consumers read now, if the store has one. */
  currentKeyId: string | null;
  /** The rotation id of a pending version, if one exists. */
  pendingRotationId: string | null;
}

/**
 * One kind of secret store: where a credential's replacement is written for its consumers.
 * Consumers never see a pending version: only `promote` makes it the one they read.
 */
export interface SecretStore<Params = Record<string, unknown>> {
  readonly kind: string;
  /** JSON Schema of a store target's parameters in the inventory (besides `store`). */
  readonly paramsSchema: Record<string, unknown>;
  /** Limits on rekey's calls to this store; unset fields take DEFAULT_CALL_LIMITS. */
  readonly callLimits?: Partial<CallLimits>;

  /** Checks, without changing anything, that the target exists or can be created and written. */
  check(params: Params, ctx: StepContext): Promise<void>;

  /**
   * Writes the pending version of `version.rotationId`. Writing the same rotation again is
   * harmless. Throws STORE_CONFLICT if a pending version of another writer is in the way.
   */
  stage(params: Params, version: StagedVersion, ctx: StepContext): Promise<void>;

  /** Reads the pending value of a rotation back, to resume it after a crash; null if there is none. */
  readPending(params: Params, rotationId: string, ctx: StepContext): Promise<SecretValue | null>;

  /** Makes the pending version of the rotation current. Promoting twice is harmless. */
  promote(params: Params, rotationId: string, ctx: StepContext): Promise<void>;

  /** Removes the pending version of the rotation, leaving the current one in place. "Already gone" is success. */
  discard(params: Params, rotationId: string, ctx: StepContext): Promise<void>;

  /** Reads metadata only, never the value. */
  describe(params: Params, ctx: StepContext): Promise<StoreDescription>;

  /**
   * Disables the versions that earlier promotes replaced, called once the old credential is
   * revoked and their values no longer work. The engine logs a failure here and goes on.
   */
  retire?(params: Params, ctx: StepContext): Promise<void>;

  close?(): Promise<void>;
}
