import type { RotationMode } from '../src/contracts.js';
import type { ErrorSummary } from '../src/errors.js';
import type { RotationState } from '../src/engine/state.js';

/** Job names, one per kind of work, shared by producers and the worker. */
export const JOB = {
  /** Preflight of a whole run: every credential's provider inspected and stores checked, nothing changed. */
  plan: 'plan',
  /** The parent of a run's flow: finishes the run once every credential's job ended. */
  run: 'run',
  /** The rotation of one credential. */
  rotate: 'rotate',
  /** The deletion of an old credential, delayed by the grace period in scheduled mode. */
  revoke: 'revoke',
  /** A tick of a credential's rotation schedule: it requests a scheduled rotation. */
  scheduled: 'scheduled-rotation',
} as const;

/** The requester of a run: the actor and the channel the request came through. */
export interface Requester {
  actor: string;
  /** `api`, `cli`, `schedule` or `webhook:<source>`. */
  trigger: string;
}

export interface ScheduledJobData {
  environment: string;
  credentialId: string;
}

export interface PlanJobData {
  runId: string;
}

export interface RunJobData {
  runId: string;
}

export interface RotateJobData extends Requester {
  runId: string;
  rotationId: string;
  environment: string;
  credentialId: string;
  mode: RotationMode;
  /** Incident mode only: disable or delete the old credential before its replacement exists. */
  revokeFirst: boolean;
  state: RotationState;
}

export interface RevokeJobData extends Requester {
  runId: string;
  rotationId: string;
  environment: string;
  credentialId: string;
  mode: RotationMode;
  oldKeyId: string;
}

/** The preflight result of one credential. */
export interface PlanEntry {
  credentialId: string;
  kind: string;
  ok: boolean;
  currentKeyId: string | null;
  /** Keys of earlier, unfinished attempts that the rotation will remove first. */
  orphanKeyIds: string[];
  /** Further keys of the principal: incident mode revokes them, scheduled mode leaves them. */
  otherKeyIds: string[];
  stores: Array<{ kind: string; ok: boolean; error: ErrorSummary | null }>;
  error: ErrorSummary | null;
}

export type RunStatus = 'planning' | 'running' | 'completed' | 'failed';

export interface RunRecord extends Requester {
  runId: string;
  environment: string;
  mode: 'scheduled' | 'incident';
  /** The operator asked to disable or delete each old credential before minting its replacement. */
  revokeFirst: boolean;
  dryRun: boolean;
  reason: string;
  createdAt: string;
  status: RunStatus;
  /** The rotations this run started, one per credential. */
  rotations: Array<{ credentialId: string; rotationId: string }>;
  plan: PlanEntry[] | null;
  finishedAt: string | null;
  error: ErrorSummary | null;
}

export interface LastRotation {
  runId: string;
  rotationId: string;
  outcome: string;
  oldKeyId: string | null;
  newKeyId: string | null;
  finishedAt: string;
  /** Set when an admin force-closed the rotation (outcome `force-closed`): who did it and why. */
  forceClosed?: { actor: string; reason: string };
}
