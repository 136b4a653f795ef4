import type { CredentialStatus, RunStatusView } from '../../jobs/status.js';

/** Outcomes after which a credential changes no more within its run. */
const FINAL_OUTCOMES = new Set(['rotated', 'revocation-scheduled', 'revocation-pending', 'failed', 'planned']);

export function isRunFinished(run: RunStatusView): boolean {
  return run.status === 'completed' || run.status === 'failed';
}

export function credentialFailed(credential: CredentialStatus): boolean {
  return credential.outcome === 'failed';
}

/** Formats a credential's line: id, outcome or current step, old and new key ids, the error. */
export function formatCredential(credential: CredentialStatus): string {
  const phase = FINAL_OUTCOMES.has(credential.outcome) ? credential.outcome : `${credential.outcome} (${credential.step ?? 'queued'})`;
  const keys = `old ${credential.oldKeyId ?? '-'} -> new ${credential.newKeyId ?? '-'}`;
  const extra = [
    credential.revokeAt === null || credential.outcome !== 'revocation-scheduled' ? '' : `revoke at ${credential.revokeAt}`,
    credential.error === null ? '' : `error ${credential.error.code}: ${credential.error.message}`,
  ].filter((part) => part !== '').join('; ');
  return `  ${credential.credentialId.padEnd(24)} ${phase.padEnd(32)} ${keys}${extra === '' ? '' : `  ${extra}`}`;
}

export function formatRun(run: RunStatusView): string {
  const lines = [`run ${run.runId} (${run.environment}, ${run.mode}${run.dryRun ? ', dry run' : ''}): ${run.status}`];
  if (run.dryRun && run.plan !== null) {
    for (const entry of run.plan) {
      const stores = entry.stores.map((store) => `${store.kind}:${store.ok ? 'ok' : store.error?.code ?? 'failed'}`).join(' ');
      const verdict = entry.ok ? 'ready' : `blocked: ${entry.error?.code ?? 'store check failed'}${entry.error === null ? '' : ` ${entry.error.message}`}`;
      lines.push(`  ${entry.credentialId.padEnd(24)} ${entry.kind.padEnd(24)} current ${entry.currentKeyId ?? '-'}  stores ${stores}  ${verdict}`);
    }
    return lines.join('\n');
  }
  for (const credential of run.credentials) lines.push(formatCredential(credential));
  return lines.join('\n');
}
