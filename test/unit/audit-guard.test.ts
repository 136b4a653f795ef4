import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFileAuditSink, type AuditEvent, type AuditSink } from '../../src/audit/index.js';
import { guardAuditSink } from '../../src/audit/guard.js';
import { isRekeyError } from '../../src/errors.js';

const EVENT: AuditEvent = { runId: 'run-1', environment: 'demo', step: 'inspect', outcome: 'started', actor: 'token:test', trigger: 'api' };

/** Creates a file sink that fails its appends while `broken` is set, as a full disk would. */
function flakySink(path: string): { sink: AuditSink; broken: { value: boolean } } {
  const inner = createFileAuditSink({ path });
  const broken = { value: false };
  return {
    broken,
    sink: {
      async append(event) {
        if (broken.value) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        await inner.append(event);
      },
      close: () => inner.close(),
    },
  };
}

describe('guardAuditSink', () => {
  const directories: string[] = [];
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
  });

  function tempFile(): string {
    const directory = mkdtempSync(join(tmpdir(), 'rekey-audit-guard-'));
    directories.push(directory);
    return join(directory, 'audit.jsonl');
  }

  it('reports an outage and its end', async () => {
    const path = tempFile();
    const { sink, broken } = flakySink(path);
    const calls: string[] = [];
    const guarded = guardAuditSink(sink, {
      failing: (reason) => void calls.push(`failing: ${reason}`),
      recovered: () => void calls.push('recovered'),
    });

    broken.value = true;
    const error: unknown = await guarded.append(EVENT).catch((caught: unknown) => caught);
    expect(isRekeyError(error)).toBe(true);
    expect((error as { code: string }).code).toBe('AUDIT_UNAVAILABLE');
    expect((error as { retryable: boolean }).retryable).toBe(true);
    expect((error as Error).message).toBe('the audit trail cannot be written (Error: ENOSPC: no space left on device, write); rekey starts no step until it can');

    broken.value = false;
    await guarded.append(EVENT);
    await guarded.append(EVENT);
    await guarded.close();
    expect(calls).toEqual(['failing: Error: ENOSPC: no space left on device, write', 'recovered']);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('passes a malformed event through', async () => {
    const { sink } = flakySink(tempFile());
    const calls: string[] = [];
    const guarded = guardAuditSink(sink, { failing: () => void calls.push('failing'), recovered: () => void calls.push('recovered') });
    const malformed = { ...EVENT, password: 'x' } as unknown as AuditEvent;
    await expect(guarded.append(malformed)).rejects.toThrow('audit event of run run-1 has an unknown field "password"');
    await guarded.close();
    expect(calls).toEqual([]);
  });
});
