import { createHmac } from 'node:crypto';
import type { AuditEvent } from '../src/audit/index.js';
import type { RotationMode, StepContext } from '../src/contracts.js';
import type { EngineAuditEvent, ResolvedStore, RotationTarget } from '../src/engine/rotation.js';
import { RekeyError } from '../src/errors.js';
import type { CredentialEntry } from '../src/inventory/schema.js';
import type { Runtime } from './runtime.js';
import type { Requester } from './types.js';

export interface CredentialScope extends Requester {
  runId: string;
  rotationId: string;
  environment: string;
  credentialId: string;
  mode: RotationMode;
}

/** Finds a credential in the inventory the worker loaded. */
export function findCredential(runtime: Runtime, environment: string, credentialId: string): CredentialEntry {
  const entry = runtime.inventory.environments.get(environment)?.credentials.find((credential) => credential.id === credentialId);
  if (entry === undefined) {
    throw new RekeyError('TARGET_NOT_FOUND', `credential "${credentialId}" of environment "${environment}" is not in this worker's inventory`);
  }
  return entry;
}

/** Resolves a credential's provider and store targets through the registry, each behind its kind's call gate. */
export function resolveTarget(runtime: Runtime, entry: CredentialEntry): RotationTarget {
  const stores: ResolvedStore[] = entry.stores.map((target) => ({
    kind: target.store,
    store: runtime.gates.store(runtime.registry.store(target.store)),
    params: target.params,
  }));
  return { provider: runtime.gates.provider(runtime.registry.provider(entry.kind)), params: entry.params, stores, gracePeriodMs: entry.gracePeriodMs };
}

export function stepContext(runtime: Runtime, scope: CredentialScope, signal: AbortSignal | undefined): StepContext {
  return {
    runId: scope.runId,
    rotationId: scope.rotationId,
    environment: scope.environment,
    credentialId: scope.credentialId,
    mode: scope.mode,
    logger: runtime.logger.child({ runId: scope.runId, rotationId: scope.rotationId, environment: scope.environment, credentialId: scope.credentialId }),
    signal: signal ?? new AbortController().signal,
    keyDigest: (text: string) => createHmac('sha256', runtime.fingerprintKey).update(text, 'utf8').digest('hex'),
  };
}

/** Returns a function that appends an engine event to the audit trail with the scope's ids. */
export function auditFor(runtime: Runtime, scope: CredentialScope, provider: string): (event: EngineAuditEvent) => Promise<void> {
  return async (event) => {
    const record: AuditEvent = {
      runId: scope.runId,
      rotationId: scope.rotationId,
      environment: scope.environment,
      credentialId: scope.credentialId,
      provider,
      actor: scope.actor,
      trigger: scope.trigger,
      ...event,
    };
    await requireAudit(runtime).append(record);
  };
}

export function requireAudit(runtime: Runtime): NonNullable<Runtime['audit']> {
  if (runtime.audit === null) throw new RekeyError('INTERNAL', 'this process has no audit trail open; only workers run steps');
  return runtime.audit;
}
