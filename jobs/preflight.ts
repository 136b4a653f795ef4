import type { Inspection } from '../src/contracts.js';
import { summarizeError, type ErrorSummary } from '../src/errors.js';
import { auditFor, findCredential, resolveTarget, stepContext, type CredentialScope } from './context.js';
import type { Runtime } from './runtime.js';
import type { PlanEntry } from './types.js';

/**
 * Checks one credential without changing anything: the provider's inspect (reachable, quota
 * room, which key is current) and every store's check (reachable, writable).
 */
export async function preflightCredential(runtime: Runtime, scope: CredentialScope): Promise<PlanEntry> {
  let kind = '(unknown)';
  try {
    const entry = findCredential(runtime, scope.environment, scope.credentialId);
    kind = entry.kind;
    const target = resolveTarget(runtime, entry);
    const ctx = stepContext(runtime, scope, undefined);
    const audit = auditFor(runtime, scope, entry.kind);

    let inspection: Inspection = { currentKeyId: null, orphanKeyIds: [] };
    let error: ErrorSummary | null = null;
    try {
      const known = await runtime.records.ledger(scope.environment, scope.credentialId).known();
      inspection = await target.provider.inspect(target.params, known, ctx);
    } catch (caught) {
      error = summarizeError(caught);
    }

    const stores: PlanEntry['stores'] = [];
    for (const store of target.stores) {
      try {
        await store.store.check(store.params, ctx);
        stores.push({ kind: store.kind, ok: true, error: null });
      } catch (caught) {
        stores.push({ kind: store.kind, ok: false, error: summarizeError(caught) });
      }
    }

    const ok = error === null && stores.every((store) => store.ok);
    const failedStores = stores.filter((store) => !store.ok).map((store) => store.kind).join(',');
    await audit({
      step: 'inspect',
      outcome: ok ? 'succeeded' : 'failed',
      oldKeyId: inspection.currentKeyId,
      detail: { preflight: true, orphans: inspection.orphanKeyIds.length, failedStores: failedStores === '' ? null : failedStores },
      ...(error === null ? {} : { error }),
    });
    return {
      credentialId: scope.credentialId, kind, ok, currentKeyId: inspection.currentKeyId, orphanKeyIds: inspection.orphanKeyIds,
      otherKeyIds: inspection.otherKeyIds ?? [], stores, error,
    };
  } catch (caught) {
    return { credentialId: scope.credentialId, kind, ok: false, currentKeyId: null, orphanKeyIds: [], otherKeyIds: [], stores: [], error: summarizeError(caught) };
  }
}
