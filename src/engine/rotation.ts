import type { CredentialProvider, KnownKeys, SecretStore, StepContext, StepName } from '../contracts.js';
import { isRekeyError, RekeyError, summarizeError, type ErrorSummary } from '../errors.js';
import { parseMaterial, renderMaterial, SecretValue, type Material } from '../secret.js';
import { pollUntilStable, retryTransient, sleep } from './poll.js';
import type { RotationState } from './state.js';

/** A store target of one credential, resolved from the inventory. */
export interface ResolvedStore {
  kind: string;
  store: SecretStore;
  params: Record<string, unknown>;
}

/** One credential, resolved from the inventory: its provider, parameters and store targets. */
export interface RotationTarget {
  provider: CredentialProvider;
  params: Record<string, unknown>;
  stores: ResolvedStore[];
  gracePeriodMs: number;
}

/** rekey's own record of a credential's keys, kept across rotations. */
export interface CredentialLedger {
  known(): Promise<KnownKeys>;
  /** Records a key rekey created before anything else can fail, so a crash leaves it findable. */
  markUnpromoted(keyId: string): Promise<void>;
  forget(keyId: string): Promise<void>;
  markCurrent(keyId: string): Promise<void>;
}

export interface EngineAuditEvent {
  step: StepName;
  outcome: 'started' | 'succeeded' | 'failed' | 'retrying' | 'skipped' | 'resumed';
  oldKeyId?: string | null;
  newKeyId?: string | null;
  fingerprints?: Record<string, string>;
  error?: ErrorSummary;
  detail?: Record<string, string | number | boolean | null>;
}

export interface RotationHooks {
  /** Saves the state durably; the engine calls it after every change, before the next step. */
  persist(state: RotationState): Promise<void>;
  ledger: CredentialLedger;
  audit(event: EngineAuditEvent): Promise<void>;
  /** Schedules the deletion of the old credential after `delayMs`, as a job of its own. */
  scheduleRevoke(oldKeyId: string, delayMs: number): Promise<void>;
  /** Computes the keyed fingerprint of a value. */
  fingerprint(value: SecretValue): string;
  /**
   * Indexes a credential version so a scanner's report of it can be matched later: the
   * fingerprints of its secret fields, and its key id when the provider's key ids are public.
   */
  indexVersion?(keyId: string, fingerprints: Record<string, string>): Promise<void>;
  /** Called after each recorded step boundary; crash tests throw here. */
  atBoundary?(point: BoundaryPoint): Promise<void> | void;
}

export type BoundaryPoint = 'inspected' | 'minted' | 'staged' | 'applied' | 'verified' | 'promoted' | 'revoked';

/**
 * How long a store write of a freshly minted value is retried inside the stage step. Failing the
 * step instead would lose the value (it is in memory only) and force a second mint.
 */
export const STAGE_RETRY_BUDGET_MS = 120_000;

/** How long the record of a step that changed something is retried while the audit trail fails. */
export const AUDIT_RETRY_BUDGET_MS = 60_000;

/** How many times an incident-mode revoke is tried inline before it moves to a job of its own. */
const INLINE_REVOKE_ATTEMPTS = 3;
const INLINE_REVOKE_PAUSE_MS = 1000;

/**
 * Runs (or resumes) the rotation of one credential. The steps and their order follow the two
 * credential families: minted (mint, stage, verify) and set (generate, stage, apply, verify).
 * The state records which steps are done, so a retry after a crash continues where the crash hit.
 */
export interface RotationOptions {
  /**
   * Disable (or, where the provider cannot disable, delete) the old credential right after
   * inspect, before its replacement exists. An explicit operator choice for a leaked key, allowed
   * in incident mode only: until the replacement is promoted, workloads have no working credential.
   */
  revokeFirst?: boolean;
  /** Overrides STAGE_RETRY_BUDGET_MS. */
  stageRetryBudgetMs?: number;
  /** Overrides AUDIT_RETRY_BUDGET_MS. */
  auditRetryBudgetMs?: number;
}

export async function runRotation(target: RotationTarget, state: RotationState, ctx: StepContext, hooks: RotationHooks, options: RotationOptions = {}): Promise<RotationState> {
  if (options.revokeFirst === true && ctx.mode !== 'incident') {
    throw new RekeyError('INVALID_PARAMETERS', 'revoke-first is allowed in incident mode only');
  }
  const run = new RotationRun(target, state, ctx, hooks, options);
  return run.execute();
}

class RotationRun {
  /** Materials this attempt keeps in memory, wiped when verification is over. */
  private readonly materials: Material[] = [];

  constructor(
    private readonly target: RotationTarget,
    private readonly state: RotationState,
    private readonly ctx: StepContext,
    private readonly hooks: RotationHooks,
    private readonly options: RotationOptions,
  ) {}

  private get provider(): CredentialProvider {
    return this.target.provider;
  }

  async execute(): Promise<RotationState> {
    const state = this.state;
    state.outcome = 'in-progress';
    state.error = null;
    if (state.step !== null) {
      await this.hooks.audit({ step: state.step, outcome: 'resumed', oldKeyId: state.oldKeyId, newKeyId: state.newKeyId });
    }

    if (!state.inspected) await this.inspect();
    if (this.options.revokeFirst === true) await this.revokeFirst();

    // Once verified, the value is no longer needed here: promotion moves versions by stage id.
    // Every material this attempt created or read back is wiped, whether the steps succeeded or not.
    if (!state.verified) {
      try {
        const material = this.provider.family === 'minted' ? await this.mintAndStage() : await this.generateStageApply();
        await this.verify(material);
      } finally {
        for (const material of this.materials.splice(0)) {
          for (const value of Object.values(material.fields)) if (value instanceof SecretValue) value.wipe();
        }
      }
    }
    if (!state.promoted) await this.promote();
    await this.retireOld();
    return state;
  }

  private async inspect(): Promise<void> {
    const inspection = await this.step('inspect', async () => {
      const known = await this.hooks.ledger.known();
      return this.provider.inspect(this.target.params, known, this.ctx);
    });

    // An orphan is a key an earlier attempt of rekey created and never promoted. Removing it
    // first keeps the provider's key quota from filling up with abandoned replacements.
    for (const orphanKeyId of inspection.orphanKeyIds) {
      await this.step('discard', () => this.provider.discard(this.target.params, orphanKeyId, this.ctx), { oldKeyId: orphanKeyId, detail: { reason: 'orphan' } });
      await this.hooks.ledger.forget(orphanKeyId);
    }

    if (inspection.currentKeyId !== null && this.provider.keyIdIsPublic === true) {
      await this.hooks.indexVersion?.(inspection.currentKeyId, {});
    }
    this.state.oldKeyId = inspection.currentKeyId;
    this.state.otherKeyIds = inspection.otherKeyIds ?? [];
    if (this.state.otherKeyIds.length > 0) {
      this.ctx.logger.warn({ otherKeyIds: this.state.otherKeyIds, mode: this.ctx.mode }, this.ctx.mode === 'incident'
        ? 'the principal has further keys; incident mode revokes them with the old one'
        : 'the principal has further keys that this scheduled rotation leaves in place');
    }
    this.state.inspected = true;
    await this.save('inspected');
  }

  /** Cuts the old credential off before the replacement exists, as the operator asked. */
  private async revokeFirst(): Promise<void> {
    const state = this.state;
    const oldKeyId = state.oldKeyId;
    if (oldKeyId === null || state.disabled || state.revoked) return;

    const detail = { revokeFirst: true };
    if (this.provider.disable !== undefined) {
      const disable = this.provider.disable.bind(this.provider);
      await this.step('disable', () => disable(this.target.params, oldKeyId, this.ctx), { oldKeyId, detail });
      state.disabled = true;
    } else {
      await this.step('revoke', () => this.provider.revoke(this.target.params, oldKeyId, this.ctx), { oldKeyId, detail });
      state.revoked = true;
    }
    await this.hooks.persist(state);
  }

  /** Minted family: the provider creates the value, so it is staged the moment it exists. */
  private async mintAndStage(): Promise<Material> {
    const state = this.state;
    // NOTE: a crash between the provider's create call returning and markUnpromoted below leaves
    // a key that rekey's records lack. The next inspect then reports it, and at the provider's
    // key quota it stops with KEY_QUOTA naming the key instead of deleting it.
    if (state.staged) return this.recoverMaterial();

    if (state.newKeyId !== null) {
      // The previous attempt minted a key and died before staging it: no store has its secret,
      // so it is deleted and minted again rather than left to use up the provider's key quota.
      await this.discardReplacement('lost before staging');
    }

    this.beginReplacement();
    const material = await this.step('mint', () => this.requireMethod('mint')(this.target.params, this.ctx));
    this.materials.push(material);
    state.newKeyId = material.keyId;
    await this.hooks.ledger.markUnpromoted(material.keyId);
    await this.save('minted');

    await this.stage(material);
    return material;
  }

  /**
   * Set family: rekey generates the value and stages it before touching the target, so a crash
   * after the target changed never leaves a password that no store holds.
   */
  private async generateStageApply(): Promise<Material> {
    const state = this.state;
    let material: Material;
    if (state.staged) {
      material = await this.recoverMaterial();
    } else {
      if (state.stageId !== null) await this.discardStaged();
      this.beginReplacement();
      material = await this.step('generate', async () => this.requireMethod('generate')(this.target.params, this.ctx));
      this.materials.push(material);
      state.newKeyId = material.keyId;
      await this.stage(material);
    }

    if (!state.applied) {
      await this.hooks.ledger.markUnpromoted(material.keyId);
      await this.step('apply', () => this.requireMethod('apply')(this.target.params, material, this.ctx), { newKeyId: material.keyId });
      state.applied = true;
      await this.save('applied');
    }
    return material;
  }

  private beginReplacement(): void {
    this.state.stageGeneration += 1;
    this.state.stageId = this.state.stageGeneration === 1 ? this.ctx.rotationId : `${this.ctx.rotationId}-${this.state.stageGeneration}`;
    this.state.staged = false;
    this.state.applied = false;
  }

  private async stage(material: Material): Promise<void> {
    const stageId = this.requireStageId();
    const fingerprints: Record<string, string> = {};
    for (const [name, value] of Object.entries(material.fields)) {
      if (value instanceof SecretValue) fingerprints[name] = this.hooks.fingerprint(value);
    }

    // Indexed before any store has the value, so a leak of it can always be matched.
    await this.hooks.indexVersion?.(material.keyId, fingerprints);

    const document = renderMaterial(material);
    try {
      await this.step('stage', async () => {
        for (const target of this.target.stores) {
          await retryTransient(() => target.store.stage(target.params, { rotationId: stageId, keyId: material.keyId, value: document }, this.ctx), {
            budgetMs: this.options.stageRetryBudgetMs ?? STAGE_RETRY_BUDGET_MS,
            signal: this.ctx.signal,
            onRetry: (error, attempt) => this.ctx.logger.warn({ step: 'stage', store: target.kind, attempt, error: summarizeError(error) }, 'store write failed; retrying'),
          });
        }
      }, { newKeyId: material.keyId, fingerprints, detail: { stores: this.target.stores.length } });
    } finally {
      document.wipe();
    }
    this.state.staged = true;
    await this.save('staged');
  }

  /** Reads the staged replacement back from the first store that returns it. */
  private async recoverMaterial(): Promise<Material> {
    const stageId = this.requireStageId();
    const keyId = this.state.newKeyId;
    for (const target of this.target.stores) {
      const value = await target.store.readPending(target.params, stageId, this.ctx);
      if (value !== null && keyId !== null) {
        await this.hooks.audit({ step: 'stage', outcome: 'resumed', newKeyId: keyId, detail: { recoveredFrom: target.kind } });
        try {
          const material = parseMaterial(keyId, value, this.provider.secretFields);
          this.materials.push(material);
          return material;
        } finally {
          value.wipe();
        }
      }
      value?.wipe();
    }
    throw new RekeyError('MATERIAL_LOST', `no store returned the staged replacement ${keyId ?? '(none)'} of stage ${stageId}; the new credential must be reset by hand`);
  }

  private async verify(material: Material): Promise<void> {
    try {
      const result = await this.step('verify', () => pollUntilStable(
        () => this.provider.verify(this.target.params, material, this.ctx),
        this.provider.verifyPolicy,
        this.ctx.signal,
      ), { newKeyId: material.keyId });
      this.ctx.logger.info({ step: 'verify', attempts: result.attempts, elapsedMs: result.elapsedMs, keyId: material.keyId }, 'new credential verified');
    } catch (error) {
      // A replacement that does not work must not become current: remove it, keep the old one.
      // A provider that throttled or failed the check for a while proved nothing either way, so
      // the replacement stays staged and the job's next attempt verifies it again.
      const inconclusive = isRekeyError(error) && error.retryable && error.code !== 'NOT_READY';
      if (!inconclusive) await this.discardReplacement('failed verification');
      throw error;
    }
    this.state.verified = true;
    await this.save('verified');
  }

  private async promote(): Promise<void> {
    const stageId = this.requireStageId();
    const newKeyId = this.state.newKeyId;
    await this.step('promote', async () => {
      for (const [index, target] of this.target.stores.entries()) {
        if (this.state.promotedStores.includes(index)) continue;
        await target.store.promote(target.params, stageId, this.ctx);
        this.state.promotedStores = [...this.state.promotedStores, index];
        await this.hooks.persist(this.state);
      }
    }, { newKeyId });
    if (newKeyId !== null) await this.hooks.ledger.markCurrent(newKeyId);
    this.state.promoted = true;
    await this.save('promoted');
  }

  /** Disables and deletes the old credential: at once in incident mode, after the grace period otherwise. */
  private async retireOld(): Promise<void> {
    const state = this.state;
    const oldKeyId = state.oldKeyId;
    if (this.ctx.mode === 'incident') await this.revokeOtherKeys();
    if (oldKeyId === null || oldKeyId === state.newKeyId || state.revoked) {
      state.outcome = 'rotated';
      await this.hooks.persist(state);
      return;
    }

    if (this.ctx.mode === 'scheduled') {
      if (this.provider.disable !== undefined && !state.disabled) {
        const disable = this.provider.disable.bind(this.provider);
        await this.step('disable', () => disable(this.target.params, oldKeyId, this.ctx), { oldKeyId });
        state.disabled = true;
      }
      await this.hooks.scheduleRevoke(oldKeyId, this.target.gracePeriodMs);
      state.revokeAt = new Date(Date.now() + this.target.gracePeriodMs).toISOString();
      state.outcome = 'revocation-scheduled';
      await this.hooks.persist(state);
      return;
    }

    try {
      await this.revokeWithRetries(oldKeyId);
    } catch (error) {
      if (!isRekeyError(error) || !error.retryable) throw error;
      // The verified replacement stays. After the inline attempts, the revoke moves to a job of
      // its own, so this rotation completes without rolling anything back.
      this.ctx.logger.error({ step: 'revoke', keyId: oldKeyId, error: summarizeError(error) }, 'revoke failed; the old credential is still valid and a revoke job will retry');
      await this.hooks.scheduleRevoke(oldKeyId, 0);
      state.outcome = 'revocation-pending';
      state.error = summarizeError(error);
      await this.hooks.persist(state);
      return;
    }
    await this.confirmRevoked(oldKeyId);
    state.outcome = 'rotated';
    await this.hooks.persist(state);
  }

  /** Revokes the principal's further keys, one by one, recording each as done. */
  private async revokeOtherKeys(): Promise<void> {
    while (this.state.otherKeyIds.length > 0) {
      const keyId = this.state.otherKeyIds[0]!;
      if (keyId !== this.state.newKeyId) {
        await this.step('revoke', () => this.provider.revoke(this.target.params, keyId, this.ctx), { oldKeyId: keyId, detail: { reason: 'further key of the principal' } });
      }
      this.state.otherKeyIds = this.state.otherKeyIds.slice(1);
      await this.hooks.persist(this.state);
    }
  }

  private async revokeWithRetries(oldKeyId: string): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.step('revoke', () => this.provider.revoke(this.target.params, oldKeyId, this.ctx), { oldKeyId });
        break;
      } catch (error) {
        if (!isRekeyError(error) || !error.retryable || attempt >= INLINE_REVOKE_ATTEMPTS) throw error;
        await sleep(INLINE_REVOKE_PAUSE_MS * attempt, this.ctx.signal);
      }
    }
    this.state.revoked = true;
    await this.save('revoked');
    await retireReplacedVersions(this.target, this.ctx);
  }

  private async confirmRevoked(oldKeyId: string): Promise<void> {
    this.state.step = 'confirm';
    this.state.confirmed = await confirmRevocation(this.target, oldKeyId, this.ctx, this.hooks);
    await this.hooks.persist(this.state);
  }

  /** Removes the current replacement from the provider and the stores, keeping the old credential current. */
  private async discardReplacement(reason: string): Promise<void> {
    const state = this.state;
    const newKeyId = state.newKeyId;
    if (newKeyId !== null && (this.provider.family === 'minted' || state.applied)) {
      await this.step('discard', () => this.provider.discard(this.target.params, newKeyId, this.ctx), { newKeyId, detail: { reason } });
    }
    if (state.stageId !== null) await this.discardStaged();
    if (newKeyId !== null) await this.hooks.ledger.forget(newKeyId);
    state.newKeyId = null;
    state.staged = false;
    state.applied = false;
    await this.hooks.persist(state);
  }

  private async discardStaged(): Promise<void> {
    const stageId = this.requireStageId();
    for (const target of this.target.stores) await target.store.discard(target.params, stageId, this.ctx);
    this.state.staged = false;
  }

  /** Runs one step: records its start, its outcome and its error in the audit trail. */
  private async step<T>(name: StepName, action: () => Promise<T>, fields: Omit<EngineAuditEvent, 'step' | 'outcome'> = {}): Promise<T> {
    this.state.step = name;
    await this.hooks.persist(this.state);
    await this.hooks.audit({ step: name, outcome: 'started', oldKeyId: this.state.oldKeyId, newKeyId: this.state.newKeyId, ...fields });
    let result: T;
    try {
      result = await action();
    } catch (error) {
      const summary = summarizeError(error);
      await this.hooks.audit({ step: name, outcome: 'failed', oldKeyId: this.state.oldKeyId, newKeyId: this.state.newKeyId, ...fields, error: summary });
      throw error;
    }
    // The change is made: its record is retried through a short audit outage rather than lost
    // with the step's result (a minted key exists only in this result until it is staged).
    await retryTransient(
      () => this.hooks.audit({ step: name, outcome: 'succeeded', oldKeyId: this.state.oldKeyId, newKeyId: this.state.newKeyId, ...fields }),
      { budgetMs: this.options.auditRetryBudgetMs ?? AUDIT_RETRY_BUDGET_MS, signal: this.ctx.signal },
    );
    return result;
  }

  private async save(point: BoundaryPoint): Promise<void> {
    await this.hooks.persist(this.state);
    await this.hooks.atBoundary?.(point);
  }

  private requireStageId(): string {
    if (this.state.stageId === null) throw new RekeyError('INTERNAL', 'rotation state has no stage id');
    return this.state.stageId;
  }

  private requireMethod<K extends 'mint' | 'generate' | 'apply'>(name: K): NonNullable<CredentialProvider[K]> {
    const method = this.provider[name];
    if (method === undefined) throw new RekeyError('INTERNAL', `provider ${this.provider.kind} has no ${name} step`);
    return method.bind(this.provider) as NonNullable<CredentialProvider[K]>;
  }
}

/**
 * Asks every store that can to disable the versions the rotation replaced, now that the old
 * credential is revoked. Their values no longer work, so a failure here is only logged.
 */
export async function retireReplacedVersions(target: RotationTarget, ctx: StepContext): Promise<void> {
  for (const resolved of target.stores) {
    if (resolved.store.retire === undefined) continue;
    try {
      await resolved.store.retire(resolved.params, ctx);
    } catch (error) {
      ctx.logger.warn({ store: resolved.kind, error: summarizeError(error) }, 'could not disable the replaced versions in a store; they stay enabled');
    }
  }
}

/**
 * Polls the provider until it no longer lists the old credential. Returns false, after auditing
 * it, when the window runs out: the old credential may still work and an operator must look.
 */
export async function confirmRevocation(target: RotationTarget, oldKeyId: string, ctx: StepContext, hooks: Pick<RotationHooks, 'audit'>): Promise<boolean | null> {
  const confirm = target.provider.confirm?.bind(target.provider);
  if (confirm === undefined) return null;
  await hooks.audit({ step: 'confirm', outcome: 'started', oldKeyId });
  try {
    await pollUntilStable(async () => {
      if (!(await confirm(target.params, oldKeyId, ctx))) throw new RekeyError('NOT_READY', `the provider still lists old key ${oldKeyId}`);
    }, { ...target.provider.verifyPolicy, consecutiveSuccesses: 1 }, ctx.signal);
  } catch (error) {
    const summary = summarizeError(error);
    await hooks.audit({ step: 'confirm', outcome: 'failed', oldKeyId, error: summary });
    ctx.logger.error({ step: 'confirm', keyId: oldKeyId, error: summary }, 'old credential still present after revoke');
    return false;
  }
  await hooks.audit({ step: 'confirm', outcome: 'succeeded', oldKeyId });
  return true;
}

/**
 * Cleans up after a rotation that failed for good before promotion: the replacement is removed
 * from the provider and the stores, so the old credential stays the only current one.
 */
export async function abandonRotation(target: RotationTarget, state: RotationState, ctx: StepContext, hooks: RotationHooks, error: unknown): Promise<RotationState> {
  state.error = summarizeError(error);
  state.outcome = 'failed';
  if (!state.promoted && state.promotedStores.length > 0) {
    // Some stores already serve the replacement, so deleting it would break their consumers.
    // Both credentials stay valid and the old one is not revoked; an operator resolves the store
    // that failed and rotates again.
    state.error = {
      ...state.error,
      message: `${state.error.message}; the replacement ${state.newKeyId ?? ''} is current in ${state.promotedStores.length} of ${target.stores.length} stores, so it was kept and the old credential was not revoked`,
    };
    ctx.logger.error({ newKeyId: state.newKeyId, promotedStores: state.promotedStores, error: state.error }, 'promotion failed part way; both credentials stay valid');
  } else if (!state.promoted) {
    const newKeyId = state.newKeyId;
    if (newKeyId !== null && (target.provider.family === 'minted' || state.applied)) {
      await target.provider.discard(target.params, newKeyId, ctx);
      await hooks.audit({ step: 'discard', outcome: 'succeeded', newKeyId, detail: { reason: 'rotation failed' } });
    }
    if (state.stageId !== null) {
      for (const store of target.stores) await store.store.discard(store.params, state.stageId, ctx);
    }
    if (newKeyId !== null) await hooks.ledger.forget(newKeyId);
    state.newKeyId = null;
    state.staged = false;
    state.applied = false;
  }
  await hooks.persist(state);
  return state;
}
