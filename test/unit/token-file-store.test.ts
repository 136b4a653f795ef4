import { mkdtempSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenFileStore } from '../../src/api/tokens.js';

describe('TokenFileStore', () => {
  const directories: string[] = [];
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
  });

  it('sees a revoke that kept the mtime', () => {
    const directory = mkdtempSync(join(tmpdir(), 'rekey-tokens-'));
    directories.push(directory);
    const path = join(directory, 'tokens.json');
    const writer = new TokenFileStore(path);
    const reader = new TokenFileStore(path);
    const first = writer.create({ role: 'operator', environments: null, expiresInMs: null, description: 'first' });
    const second = writer.create({ role: 'viewer', environments: null, expiresInMs: null, description: 'second' });
    expect(reader.check(first.token).status).toBe('valid');
    const before = statSync(path);

    writer.revoke(first.stored.id);
    // A file system with coarse timestamps can leave the mtime as it was.
    utimesSync(path, before.atime, before.mtime);

    expect(reader.check(first.token).status).toBe('unknown');
    expect(reader.check(second.token).status).toBe('valid');
  });
});
