import type { StagedVersion } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import type { StoredSecret, StoredVersion } from './document.js';

/** The secret after a transition, or null when the transition leaves the file as it was. */
export type Transition = StoredSecret | null;

/**
 * Adds `staged` as the pending version of the secret at `path`. Staging a rotation that is already
 * pending or current with the same key and value changes nothing. Throws STORE_CONFLICT if a
 * pending version of another rotation is in the way, or if the same rotation arrives with another
 * key or value, because replacing a staged value could lose one that a target already uses.
 */
export function stageVersion(secret: StoredSecret | undefined, path: string, staged: StagedVersion, now: string): Transition {
  const { rotationId, keyId } = staged;
  const value = staged.value.reveal();

  const pending = secret?.pending ?? null;
  if (pending !== null && pending.rotationId !== rotationId) {
    throw new RekeyError(
      'STORE_CONFLICT',
      `file store path ${path} has a pending version of rotation ${pending.rotationId}, so rotation ${rotationId} cannot ` +
        'stage there. Finish or discard that rotation first.',
    );
  }

  const existing = [pending, secret?.current ?? null].find((version) => version?.rotationId === rotationId);
  if (existing !== undefined && existing !== null) {
    if (existing.keyId === keyId && existing.value === value) return null;
    throw new RekeyError(
      'STORE_CONFLICT',
      `file store path ${path} already has key ${existing.keyId} for rotation ${rotationId}, so key ${keyId}` +
        `${existing.keyId === keyId ? ' with another value' : ''} cannot replace it. Read the staged version back to resume.`,
    );
  }
  if (secret?.previous?.rotationId === rotationId) {
    throw new RekeyError(
      'STORE_CONFLICT',
      `rotation ${rotationId} was promoted at file store path ${path} and has been replaced since by rotation ` +
        `${secret.current?.rotationId ?? '(unknown)'}, so it cannot stage again`,
    );
  }

  const version = (secret?.lastVersion ?? 0) + 1;
  const next: StoredVersion = { keyId, rotationId, version, value, stagedAt: now, promotedAt: null };
  if (secret === undefined) {
    return { current: null, pending: next, previous: null, lastVersion: version, createdAt: now, updatedAt: now };
  }
  return { ...secret, pending: next, lastVersion: version, updatedAt: now };
}

/**
 * Makes the pending version of `rotationId` current and the current one previous. Promoting a
 * rotation that is already current changes nothing. Throws STORE_CONFLICT if the rotation was
 * current once but another one has replaced it, and MATERIAL_LOST if it has nothing staged.
 */
export function promoteVersion(secret: StoredSecret | undefined, path: string, rotationId: string, now: string): Transition {
  if (secret?.current?.rotationId === rotationId) return null;

  if (secret?.pending?.rotationId === rotationId) {
    const promoted: StoredVersion = { ...secret.pending, promotedAt: now };
    return { ...secret, current: promoted, pending: null, previous: secret.current, updatedAt: now };
  }

  if (secret?.previous?.rotationId === rotationId) {
    throw new RekeyError(
      'STORE_CONFLICT',
      `rotation ${rotationId} was promoted at file store path ${path} and has been replaced since by rotation ` +
        `${secret.current?.rotationId ?? '(unknown)'}, so promoting it again would roll that rotation back`,
    );
  }
  const pendingNote = secret?.pending ? ` (the pending version belongs to rotation ${secret.pending.rotationId})` : '';
  throw new RekeyError(
    'MATERIAL_LOST',
    `file store path ${path} has no pending version of rotation ${rotationId} to promote${pendingNote}`,
  );
}

/** Drops the pending version of `rotationId`. Any other state, including no secret at all, changes nothing. */
export function discardVersion(secret: StoredSecret | undefined, rotationId: string, now: string): Transition {
  if (secret?.pending?.rotationId !== rotationId) return null;
  return { ...secret, pending: null, updatedAt: now };
}
