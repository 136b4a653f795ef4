import type { StepName } from '../contracts.js';
import type { ErrorSummary } from '../errors.js';

export type RotationOutcome =
  | 'pending'
  | 'in-progress'
  | 'rotated'
  | 'revocation-scheduled'
  | 'revocation-pending'
  /** An admin closed the rotation by hand; rekey no longer retries its revoke. */
  | 'force-closed'
  | 'failed';

/**
 * The durable progress of one credential's rotation. It contains ids and flags only, never a
 * value, because it is stored in the job's data in Redis. Each flag is set (and persisted) right
 * after its step succeeds, so a retry skips what is done and redoes only the interrupted step.
 */
export interface RotationState {
  /** The step running or last run. */
  step: StepName | null;
  outcome: RotationOutcome;
  inspected: boolean;
  oldKeyId: string | null;
  /** Further keys of the principal besides the old one; incident mode revokes them too. */
  otherKeyIds: string[];
  newKeyId: string | null;
  /**
   * The idempotency token of the current replacement in the stores. A replacement that is thrown
   * away (lost before staging, or rejected by verify) gets a new one, so a store never receives
   * two different values under one token.
   */
  stageId: string | null;
  stageGeneration: number;
  staged: boolean;
  applied: boolean;
  verified: boolean;
  promoted: boolean;
  /** Indexes (in the credential's store list) of the stores that already made the replacement current. */
  promotedStores: number[];
  disabled: boolean;
  revoked: boolean;
  /** True once the provider stopped knowing the old credential; false if the confirm window ran out. */
  confirmed: boolean | null;
  /** When the delayed revoke runs, in scheduled mode (ISO 8601). */
  revokeAt: string | null;
  error: ErrorSummary | null;
}

export function initialRotationState(): RotationState {
  return {
    step: null,
    outcome: 'pending',
    inspected: false,
    oldKeyId: null,
    otherKeyIds: [],
    newKeyId: null,
    stageId: null,
    stageGeneration: 0,
    staged: false,
    applied: false,
    verified: false,
    promoted: false,
    promotedStores: [],
    disabled: false,
    revoked: false,
    confirmed: null,
    revokeAt: null,
    error: null,
  };
}
