import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createAuditSinkFromEnv, createFileAuditSink, GENESIS_HASH, verifyAuditFile, type AuditEvent, type AuditRecord,
} from '../../src/audit/index.js';
import { SecretValue } from '../../src/secret.js';
import { transpileModuleTree } from '../support/transpile.js';

const run = promisify(execFile);

let directory: string;
let auditFile: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'rekey-audit-'));
  auditFile = join(directory, 'audit.jsonl');
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

function event(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    runId: 'run-1',
    rotationId: 'rot-1',
    environment: 'prod',
    credentialId: 'app-aws',
    provider: 'aws-iam-access-key',
    step: 'stage',
    outcome: 'started',
    actor: 'alice',
    trigger: 'cli',
    ...overrides,
  };
}

async function appendEvents(count: number): Promise<void> {
  const sink = createFileAuditSink({ path: auditFile });
  for (let index = 1; index <= count; index += 1) {
    await sink.append(event({ detail: { index } }));
  }
  await sink.close();
}

async function readLines(): Promise<string[]> {
  const text = await readFile(auditFile, 'utf8');
  return text.split('\n').filter((line) => line !== '');
}

async function readRecords(): Promise<AuditRecord[]> {
  return (await readLines()).map((line) => JSON.parse(line) as AuditRecord);
}

async function writeLines(lines: string[]): Promise<void> {
  await writeFile(auditFile, `${lines.join('\n')}\n`);
}

/** Computes a record's hash independently of the module: SHA-256 over JSON with keys sorted at every level. */
function expectedHash(record: AuditRecord): string {
  const { hash: _hash, ...rest } = record;
  const sortKeys = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]));
  };
  return createHash('sha256').update(JSON.stringify(sortKeys(rest))).digest('hex');
}


describe('file audit sink', () => {
  it('appends hash-chained records', async () => {
    const sink = createFileAuditSink({ path: auditFile });
    await sink.append(event({ outcome: 'started' }));
    await sink.append(event({ outcome: 'succeeded', newKeyId: 'AKIANEW', fingerprints: { secretAccessKey: 'ab12' } }));
    await sink.close();

    const [first, second, ...rest] = await readRecords();
    expect(rest).toEqual([]);
    expect(first).toMatchObject({ ...event({ outcome: 'started' }), seq: 1, prev: GENESIS_HASH });
    expect(second).toMatchObject({ seq: 2, outcome: 'succeeded', newKeyId: 'AKIANEW', fingerprints: { secretAccessKey: 'ab12' } });
    expect(second?.prev).toBe(first?.hash);
    expect(first?.hash).toBe(expectedHash(first as AuditRecord));
    expect(second?.hash).toBe(expectedHash(second as AuditRecord));
    expect(new Date(first?.time ?? '').toISOString()).toBe(first?.time);
  });

  it('continues the chain of an existing file', async () => {
    await appendEvents(2);
    const [, second] = await readRecords();

    const sink = createFileAuditSink({ path: auditFile });
    await sink.append(event({ outcome: 'succeeded' }));
    await sink.close();

    const third = (await readRecords())[2];
    expect(third?.seq).toBe(3);
    expect(third?.prev).toBe(second?.hash);
    expect(await verifyAuditFile(auditFile)).toEqual({ ok: true, records: 3 });
  });

  it('creates the file with mode 0600', async () => {
    await appendEvents(1);

    expect((await stat(auditFile)).mode & 0o777).toBe(0o600);
  });

  it('keeps one chain under concurrent appends', async () => {
    const first = createFileAuditSink({ path: auditFile });
    const second = createFileAuditSink({ path: auditFile });
    const appends = Array.from({ length: 60 }, (_, index) =>
      (index % 2 === 0 ? first : second).append(event({ detail: { index } })));
    await Promise.all(appends);
    await Promise.all([first.close(), second.close()]);

    const records = await readRecords();
    expect(records.map((record) => record.seq)).toEqual(Array.from({ length: 60 }, (_, index) => index + 1));
    expect(await verifyAuditFile(auditFile)).toEqual({ ok: true, records: 60 });
  });

  it('appends in call order within one sink', async () => {
    const sink = createFileAuditSink({ path: auditFile });
    await Promise.all([1, 2, 3, 4, 5].map((index) => sink.append(event({ detail: { index } }))));
    await sink.close();

    expect((await readRecords()).map((record) => record.detail?.index)).toEqual([1, 2, 3, 4, 5]);
  });

  it('keeps one chain across two processes', async () => {
    const moduleUrl = await transpileModuleTree('src/audit/index.ts', join(directory, 'build'));
    const script = join(directory, 'append.mjs');
    await writeFile(script, [
      `import { createFileAuditSink } from ${JSON.stringify(moduleUrl)};`,
      'const [path, worker, count] = process.argv.slice(2);',
      'const sink = createFileAuditSink({ path });',
      'await Promise.all(Array.from({ length: Number(count) }, (_, index) => sink.append({',
      "  runId: `run-${worker}`, environment: 'prod', step: 'stage', outcome: 'started', actor: worker, trigger: 'cli',",
      '  detail: { index },',
      '})));',
      'await sink.close();',
    ].join('\n'));

    await Promise.all(['a', 'b'].map((worker) => run(process.execPath, [script, auditFile, worker, '40'])));

    const records = await readRecords();
    expect(records.filter((record) => record.actor === 'a')).toHaveLength(40);
    expect(records.filter((record) => record.actor === 'b')).toHaveLength(40);
    expect(await verifyAuditFile(auditFile)).toEqual({ ok: true, records: 80 });
  });

  it('writes to REKEY_AUDIT_FILE', async () => {
    const path = join(directory, 'nested', 'trail.jsonl');
    const sink = createAuditSinkFromEnv({ REKEY_AUDIT_FILE: path });
    await sink.append(event());
    await sink.close();

    expect(await verifyAuditFile(path)).toEqual({ ok: true, records: 1 });
  });

  it('rejects appends after close', async () => {
    const sink = createFileAuditSink({ path: auditFile });
    await sink.close();

    await expect(sink.append(event())).rejects.toThrow(`audit sink for ${auditFile} is closed`);
  });

  it('rejects appends after a damaged line', async () => {
    await appendEvents(2);
    const lines = await readLines();
    await writeFile(auditFile, `${lines[0]}\n${lines[1]?.slice(0, 40)}`);

    const sink = createFileAuditSink({ path: auditFile });
    await expect(sink.append(event())).rejects.toThrow(
      `cannot append to audit file ${auditFile}: its last line is not a valid audit record. ` +
        'Run the audit verification to find the damage. Appends resume once the file ends with a valid record.',
    );
  });

  it('rejects appends after an edited record', async () => {
    await appendEvents(2);
    const lines = await readLines();
    await writeLines([lines[0] as string, (lines[1] as string).replace('"actor":"alice"', '"actor":"mallory"')]);

    const sink = createFileAuditSink({ path: auditFile });
    await expect(sink.append(event())).rejects.toThrow(
      `cannot append to audit file ${auditFile}: its last record (seq 2) is invalid: ` +
        'hash does not match the record content, so the record was edited',
    );
  });

  describe('when an event carries a secret value', () => {
    it('rejects a SecretValue in detail', async () => {
      const sink = createFileAuditSink({ path: auditFile });
      const leaked = { password: SecretValue.fromString('hunter2') } as unknown as AuditEvent['detail'];

      await expect(sink.append(event({ detail: leaked }))).rejects.toThrow(
        'audit event of run run-1 contains a secret value at "detail.password". ' +
          'Audit records carry fingerprints, never values, even redacted ones.',
      );
      await expect(stat(auditFile)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('rejects a redacted string in an error message', async () => {
      const sink = createFileAuditSink({ path: auditFile });
      const error = { code: 'VERIFY_FAILED', message: 'login failed for password [redacted]', retryable: false };

      await expect(sink.append(event({ outcome: 'failed', error }))).rejects.toThrow('contains a secret value at "error.message"');
    });

    it('rejects a redacted string in a top-level field', async () => {
      const sink = createFileAuditSink({ path: auditFile });

      await expect(sink.append(event({ actor: '[redacted]' }))).rejects.toThrow('contains a secret value at "actor"');
    });

    it('rejects a redacted fingerprint name', async () => {
      const sink = createFileAuditSink({ path: auditFile });

      await expect(sink.append(event({ fingerprints: { '[redacted]': 'ab12' } }))).rejects.toThrow(
        'contains a secret value at "fingerprints.[redacted]"',
      );
    });
  });

  describe('when an event is malformed', () => {
    it('rejects an unknown step', async () => {
      const sink = createFileAuditSink({ path: auditFile });

      await expect(sink.append(event({ step: 'rotate' }))).rejects.toThrow(
        'audit event of run run-1 has an unknown step "rotate", expected one of inspect, discard, mint, generate, ' +
          'stage, apply, verify, promote, disable, revoke, confirm, run',
      );
    });

    it('rejects a missing actor', async () => {
      const sink = createFileAuditSink({ path: auditFile });

      await expect(sink.append(event({ actor: '' }))).rejects.toThrow('audit event of run run-1 is missing "actor" (a non-empty string)');
    });

    it('rejects a nested detail value', async () => {
      const sink = createFileAuditSink({ path: auditFile });
      const detail = { nested: { a: 1 } } as unknown as AuditEvent['detail'];

      await expect(sink.append(event({ detail }))).rejects.toThrow(
        'audit event of run run-1 has an invalid detail "nested": expected a string, finite number, boolean or null',
      );
    });
  });

  describe('when another process holds the lock', () => {
    it('times out on a live lock', async () => {
      await writeFile(`${auditFile}.lock`, 'held by a test');
      const sink = createFileAuditSink({ path: auditFile, lock: { timeoutMs: 200, staleMs: 60_000 } });

      await expect(sink.append(event())).rejects.toMatchObject({
        code: 'TIMEOUT',
        retryable: true,
        message: `timed out after 200 ms waiting for lock file ${auditFile}.lock, which another process holds. ` +
          'If no rekey process is running, delete the file.',
      });
    });

    it('takes over a stale lock', async () => {
      await writeFile(`${auditFile}.lock`, 'left by a crashed process');
      const longAgo = new Date(Date.now() - 120_000);
      await utimes(`${auditFile}.lock`, longAgo, longAgo);
      const sink = createFileAuditSink({ path: auditFile, lock: { timeoutMs: 5_000, staleMs: 60_000 } });

      await sink.append(event());
      await sink.close();

      expect(await verifyAuditFile(auditFile)).toEqual({ ok: true, records: 1 });
      await expect(stat(`${auditFile}.lock`)).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });
});

describe('verifyAuditFile', () => {
  it('accepts a valid file with its record count', async () => {
    await appendEvents(5);

    expect(await verifyAuditFile(auditFile)).toEqual({ ok: true, records: 5 });
  });

  it('accepts an empty file', async () => {
    await writeFile(auditFile, '');

    expect(await verifyAuditFile(auditFile)).toEqual({ ok: true, records: 0 });
  });

  it('reports an edited record', async () => {
    await appendEvents(5);
    const lines = await readLines();
    lines[2] = (lines[2] as string).replace('"actor":"alice"', '"actor":"mallory"');
    await writeLines(lines);

    expect(await verifyAuditFile(auditFile)).toEqual({
      ok: false, records: 2, line: 3, reason: 'hash does not match the record content, so the record was edited',
    });
  });

  it('reports a rehashed edit at the next line', async () => {
    await appendEvents(5);
    const lines = await readLines();
    const edited = { ...(JSON.parse(lines[2] as string) as AuditRecord), actor: 'mallory' };
    lines[2] = JSON.stringify({ ...edited, hash: expectedHash(edited) });
    await writeLines(lines);

    expect(await verifyAuditFile(auditFile)).toEqual({
      ok: false,
      records: 3,
      line: 4,
      reason: 'prev does not match the hash of the previous record, so a record before it was deleted, replaced or moved',
    });
  });

  it('reports a deleted record', async () => {
    await appendEvents(5);
    const lines = await readLines();
    lines.splice(2, 1);
    await writeLines(lines);

    expect(await verifyAuditFile(auditFile)).toEqual({
      ok: false, records: 2, line: 3, reason: 'seq is 4 but 3 was expected, so a record was deleted, inserted or moved',
    });
  });

  it('reports a deleted first record', async () => {
    await appendEvents(3);
    await writeLines((await readLines()).slice(1));

    expect(await verifyAuditFile(auditFile)).toEqual({
      ok: false, records: 0, line: 1, reason: 'seq is 2 but 1 was expected, so a record was deleted, inserted or moved',
    });
  });

  it('reports reordered records', async () => {
    await appendEvents(5);
    const lines = await readLines();
    [lines[1], lines[2]] = [lines[2] as string, lines[1] as string];
    await writeLines(lines);

    expect(await verifyAuditFile(auditFile)).toEqual({
      ok: false, records: 1, line: 2, reason: 'seq is 3 but 2 was expected, so a record was deleted, inserted or moved',
    });
  });

  it('reports a truncated last line', async () => {
    await appendEvents(4);
    const lines = await readLines();
    await writeFile(auditFile, `${lines.slice(0, 3).join('\n')}\n${lines[3]?.slice(0, 50)}`);

    expect(await verifyAuditFile(auditFile)).toEqual({
      ok: false, records: 3, line: 4, reason: 'not valid JSON (a truncated or damaged line)',
    });
  });

  it('reports an empty line', async () => {
    await appendEvents(3);
    const lines = await readLines();
    lines.splice(1, 0, '');
    await writeLines(lines);

    expect(await verifyAuditFile(auditFile)).toEqual({ ok: false, records: 1, line: 2, reason: 'empty line' });
  });

  it('rejects a missing file', async () => {
    await expect(verifyAuditFile(auditFile)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
