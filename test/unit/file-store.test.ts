import { execFile } from 'node:child_process';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileStore, type FileStore } from '../../providers/file-store/index.js';
import type { Env, StagedVersion, StepContext } from '../../src/contracts.js';
import { silentLogger } from '../../src/logger.js';
import { SecretValue } from '../../src/secret.js';
import { testKeyDigest } from '../support/context.js';
import { transpileModuleTree } from '../support/transpile.js';

const run = promisify(execFile);

const PATH = 'prod/app/aws';
const MASTER_KEY = randomBytes(32);

let directory: string;
let storeFile: string;
let keyFile: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'rekey-file-store-'));
  storeFile = join(directory, 'state', 'secrets.enc');
  keyFile = join(directory, 'state', 'master.key');
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Builds the store's environment with the master key in REKEY_MASTER_KEY. */
function keyEnv(key: Buffer = MASTER_KEY): Env {
  return { REKEY_FILE_STORE: storeFile, REKEY_MASTER_KEY: key.toString('hex') };
}

/** Builds the store's environment with the master key in a key file. */
function keyFileEnv(): Env {
  return { REKEY_FILE_STORE: storeFile, REKEY_MASTER_KEY_FILE: keyFile };
}

function stepContext(): StepContext {
  return {
    runId: 'run-1',
    rotationId: 'rot-1',
    environment: 'prod',
    credentialId: 'app-aws',
    mode: 'scheduled',
    logger: silentLogger(),
    signal: new AbortController().signal,
    keyDigest: testKeyDigest,
  };
}

function staged(rotationId: string, keyId: string, value: string): StagedVersion {
  return { rotationId, keyId, value: SecretValue.fromString(value) };
}

async function stageAndPromote(store: FileStore, rotationId: string, keyId: string, value: string): Promise<void> {
  await store.stage({ path: PATH }, staged(rotationId, keyId, value), stepContext());
  await store.promote({ path: PATH }, rotationId, stepContext());
}

interface DecryptedVersion {
  keyId: string;
  rotationId: string;
  version: number;
  value: string;
  stagedAt: string;
  promotedAt: string | null;
}

interface DecryptedSecret {
  current: DecryptedVersion | null;
  pending: DecryptedVersion | null;
  previous: DecryptedVersion | null;
  lastVersion: number;
  createdAt: string;
  updatedAt: string;
}

/** Decrypts the store file independently of the module, from the documented envelope format. */
async function decryptStoreFile(key: Buffer = MASTER_KEY): Promise<Record<string, DecryptedSecret>> {
  const envelope = JSON.parse(await readFile(storeFile, 'utf8')) as Record<string, string | number>;
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(String(envelope.iv), 'base64'));
  decipher.setAAD(Buffer.from(`rekey-file-store/${envelope.version}/${envelope.masterKeyId}`));
  decipher.setAuthTag(Buffer.from(String(envelope.tag), 'base64'));
  const plaintext = Buffer.concat([decipher.update(Buffer.from(String(envelope.ciphertext), 'base64')), decipher.final()]);
  return (JSON.parse(plaintext.toString('utf8')) as { secrets: Record<string, DecryptedSecret> }).secrets;
}

async function readEnvelope(): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(storeFile, 'utf8')) as Record<string, unknown>;
}


describe('file store', () => {
  describe('when writing the store file', () => {
    it('keeps values and paths out of the file', async () => {
      const canary = `canary-${randomBytes(12).toString('hex')}`;
      const store = createFileStore(keyEnv());
      await store.stage({ path: 'prod/canary-app/aws' }, staged('rot-canary', 'AKIACANARY', canary), stepContext());
      await store.promote({ path: 'prod/canary-app/aws' }, 'rot-canary', stepContext());
      await store.stage({ path: 'prod/canary-app/aws' }, staged('rot-pending', 'AKIAPENDING', `${canary}-2`), stepContext());

      const raw = await readFile(storeFile, 'utf8');
      for (const text of [canary, 'canary-app', 'AKIACANARY', 'AKIAPENDING', 'rot-canary', 'rot-pending']) {
        expect(raw).not.toContain(text);
      }
      expect((await store.readCurrentValue('prod/canary-app/aws'))?.reveal()).toBe(canary);
    });

    it('writes a versioned envelope', async () => {
      await stageAndPromote(createFileStore(keyEnv()), 'rot-1', 'key-1', 'value-1');

      const envelope = await readEnvelope();
      expect(Object.keys(envelope).sort()).toEqual(['ciphertext', 'format', 'iv', 'masterKeyId', 'tag', 'version']);
      expect(envelope.format).toBe('rekey-file-store');
      expect(envelope.version).toBe(1);
      expect(Buffer.from(String(envelope.iv), 'base64')).toHaveLength(12);
      expect(Buffer.from(String(envelope.tag), 'base64')).toHaveLength(16);
    });

    it('uses a fresh IV for every write', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());
      const first = await readEnvelope();
      await store.promote({ path: PATH }, 'rot-1', stepContext());
      const second = await readEnvelope();

      expect(second.iv).not.toBe(first.iv);
    });

    it('writes the store file with mode 0600', async () => {
      await stageAndPromote(createFileStore(keyEnv()), 'rot-1', 'key-1', 'value-1');

      expect((await stat(storeFile)).mode & 0o777).toBe(0o600);
    });

    it('leaves no temporary or lock files', async () => {
      await stageAndPromote(createFileStore(keyFileEnv()), 'rot-1', 'key-1', 'value-1');

      expect((await readdir(dirname(storeFile))).sort()).toEqual(['master.key', 'secrets.enc']);
    });

    it('leaves a repeated stage unwritten', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());
      const before = await readFile(storeFile, 'utf8');

      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      expect(await readFile(storeFile, 'utf8')).toBe(before);
    });
  });

  describe('when loading the master key', () => {
    it('creates the key file with mode 0600', async () => {
      await stageAndPromote(createFileStore(keyFileEnv()), 'rot-1', 'key-1', 'value-1');

      expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
      expect((await stat(dirname(keyFile))).mode & 0o777).toBe(0o700);
      const content = await readFile(keyFile, 'utf8');
      expect(content).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
      expect(Object.keys(await decryptStoreFile(Buffer.from(content.trim(), 'base64')))).toEqual([PATH]);
    });

    it('reuses an existing key file', async () => {
      await stageAndPromote(createFileStore(keyFileEnv()), 'rot-1', 'key-1', 'value-1');

      const reopened = createFileStore(keyFileEnv());

      expect((await reopened.readCurrentValue(PATH))?.reveal()).toBe('value-1');
    });

    it('rejects a key file readable by others', async () => {
      await mkdir(dirname(keyFile), { recursive: true });
      await writeFile(keyFile, `${MASTER_KEY.toString('base64')}\n`);
      await chmod(keyFile, 0o644);
      const store = createFileStore(keyFileEnv());

      await expect(store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext())).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: `master key file ${keyFile} has mode 0644, which gives group or others access to it. ` +
          `Run "chmod 600 ${keyFile}" and try again.`,
      });
      await expect(stat(storeFile)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('accepts the key file after chmod 600', async () => {
      await mkdir(dirname(keyFile), { recursive: true });
      await writeFile(keyFile, MASTER_KEY.toString('hex'), { mode: 0o640 });
      const store = createFileStore(keyFileEnv());
      await expect(store.describe({ path: PATH }, stepContext())).resolves.toEqual({ currentKeyId: null, pendingRotationId: null });
      await expect(store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext())).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
      });

      await chmod(keyFile, 0o600);
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      expect(Object.keys(await decryptStoreFile())).toEqual([PATH]);
    });

    it('accepts hex, base64 and raw keys', async () => {
      await stageAndPromote(createFileStore(keyEnv()), 'rot-1', 'key-1', 'value-1');
      await mkdir(dirname(keyFile), { recursive: true });
      await writeFile(keyFile, MASTER_KEY, { mode: 0o600 });

      const forms: Env[] = [
        { REKEY_FILE_STORE: storeFile, REKEY_MASTER_KEY: MASTER_KEY.toString('hex').toUpperCase() },
        { REKEY_FILE_STORE: storeFile, REKEY_MASTER_KEY: MASTER_KEY.toString('base64') },
        { REKEY_FILE_STORE: storeFile, REKEY_MASTER_KEY: MASTER_KEY.toString('base64url') },
        keyFileEnv(),
      ];
      for (const env of forms) {
        expect((await createFileStore(env).readCurrentValue(PATH))?.reveal()).toBe('value-1');
      }
    });

    it('rejects a malformed master key', () => {
      const cases = [
        { key: 'not-a-key', length: 9 },
        { key: randomBytes(31).toString('hex'), length: 62 },
        { key: randomBytes(33).toString('base64'), length: 44 },
        { key: `${randomBytes(32).toString('hex').slice(0, 63)}g`, length: 64 },
      ];
      for (const { key, length } of cases) {
        expect(() => createFileStore({ REKEY_MASTER_KEY: key })).toThrow(
          'REKEY_MASTER_KEY is not a valid master key: expected 32 bytes as base64 (44 characters) or hex ' +
            `(64 characters), got ${length} characters. Generate a key with "openssl rand -base64 32".`,
        );
      }
    });

    it('rejects the store file under another key', async () => {
      await stageAndPromote(createFileStore(keyEnv()), 'rot-1', 'key-1', 'value-1');
      const { masterKeyId } = await readEnvelope();

      const other = createFileStore(keyEnv(randomBytes(32)));

      await expect(other.readCurrentValue(PATH)).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: expect.stringMatching(new RegExp(
          `^store file ${storeFile} was encrypted with another master key \\(id ${String(masterKeyId)}\\) than the one ` +
            'loaded from REKEY_MASTER_KEY \\(id [0-9a-f]{16}\\)\\. Provide the master key the file was written with\\.$',
        )),
      });
    });

    it('rejects a modified store file', async () => {
      await stageAndPromote(createFileStore(keyEnv()), 'rot-1', 'key-1', 'value-1');
      const envelope = await readEnvelope();
      const ciphertext = Buffer.from(String(envelope.ciphertext), 'base64');
      ciphertext[0] = (ciphertext[0] as number) ^ 0x01;
      await writeFile(storeFile, JSON.stringify({ ...envelope, ciphertext: ciphertext.toString('base64') }));

      await expect(createFileStore(keyEnv()).readCurrentValue(PATH)).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: `store file ${storeFile} failed authentication: it was modified or damaged after rekey wrote it. ` +
          'Restore it from a backup.',
      });
    });

    it('rejects an unsupported format version', async () => {
      await stageAndPromote(createFileStore(keyEnv()), 'rot-1', 'key-1', 'value-1');
      await writeFile(storeFile, JSON.stringify({ ...(await readEnvelope()), version: 2 }));

      await expect(createFileStore(keyEnv()).readCurrentValue(PATH)).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: `store file ${storeFile} has format version 2, but this rekey reads version 1 only`,
      });
    });

    it('rejects a file of another format', async () => {
      await mkdir(dirname(storeFile), { recursive: true });
      await writeFile(storeFile, 'prod/app/aws=plaintext\n');

      await expect(createFileStore(keyEnv()).readCurrentValue(PATH)).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: `file ${storeFile} is not a rekey file store (no "format": "rekey-file-store" header)`,
      });
    });

    it('rejects a lost key file', async () => {
      await stageAndPromote(createFileStore(keyFileEnv()), 'rot-1', 'key-1', 'value-1');
      await unlink(keyFile);
      const store = createFileStore(keyFileEnv());

      await expect(store.stage({ path: 'prod/other' }, staged('rot-2', 'key-2', 'value-2'), stepContext())).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: `store file ${storeFile} exists, but its master key is missing: neither REKEY_MASTER_KEY nor the key ` +
          `file ${keyFile} is there. Restore the key file or set REKEY_MASTER_KEY.`,
      });
      await expect(stat(keyFile)).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });

  describe('when staging', () => {
    it('hides a pending version from consumers', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      expect((await store.readPending({ path: PATH }, 'rot-1', stepContext()))?.reveal()).toBe('value-1');
      expect(await store.readCurrentValue(PATH)).toBeNull();
      expect(await store.describe({ path: PATH }, stepContext())).toEqual({ currentKeyId: null, pendingRotationId: 'rot-1' });
    });

    it('records the pending version', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      const secret = (await decryptStoreFile())[PATH];
      expect(secret).toMatchObject({
        current: null,
        previous: null,
        pending: { keyId: 'key-1', rotationId: 'rot-1', version: 1, value: 'value-1', promotedAt: null },
        lastVersion: 1,
      });
      expect(secret?.pending?.stagedAt).toBe(secret?.updatedAt);
      expect(new Date(secret?.pending?.stagedAt ?? '').toISOString()).toBe(secret?.pending?.stagedAt);
    });

    it('rejects a pending version of another rotation', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      await expect(store.stage({ path: PATH }, staged('rot-2', 'key-2', 'value-2'), stepContext())).rejects.toMatchObject({
        code: 'STORE_CONFLICT',
        retryable: false,
        message: 'file store path prod/app/aws has a pending version of rotation rot-1, so rotation rot-2 cannot stage ' +
          'there. Finish or discard that rotation first.',
      });
      expect((await store.readPending({ path: PATH }, 'rot-1', stepContext()))?.reveal()).toBe('value-1');
    });

    it('rejects another key for a staged rotation', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      await expect(store.stage({ path: PATH }, staged('rot-1', 'key-2', 'value-2'), stepContext())).rejects.toMatchObject({
        code: 'STORE_CONFLICT',
        message: 'file store path prod/app/aws already has key key-1 for rotation rot-1, so key key-2 cannot replace it. ' +
          'Read the staged version back to resume.',
      });
    });

    it('rejects another value for a staged key', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      const attempt = store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-other'), stepContext());

      await expect(attempt).rejects.toMatchObject({
        code: 'STORE_CONFLICT',
        message: 'file store path prod/app/aws already has key key-1 for rotation rot-1, so key key-1 with another value ' +
          'cannot replace it. Read the staged version back to resume.',
      });
      await expect(attempt).rejects.not.toThrow(/value-/);
    });

    it('ignores a stage of the current rotation', async () => {
      const store = createFileStore(keyEnv());
      await stageAndPromote(store, 'rot-1', 'key-1', 'value-1');

      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      expect(await store.describe({ path: PATH }, stepContext())).toEqual({ currentKeyId: 'key-1', pendingRotationId: null });
    });

    it('rejects an invalid path', async () => {
      const store = createFileStore(keyEnv());

      for (const path of ['', '/prod/app', 'prod//app', 'prod/app/', 'prod app', 'x'.repeat(257)]) {
        await expect(store.stage({ path }, staged('rot-1', 'key-1', 'value-1'), stepContext())).rejects.toMatchObject({
          code: 'INVALID_PARAMETERS',
        });
      }
      await expect(store.stage({ path: 'prod app' }, staged('rot-1', 'key-1', 'value-1'), stepContext())).rejects.toThrow(
        'invalid file store path "prod app": expected at most 256 characters in slash-separated segments of letters, ' +
          'digits, ".", "_" and "-", such as prod/app/aws',
      );
    });

    it('keeps a __proto__ path as an ordinary secret', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: '__proto__' }, staged('rot-1', 'key-1', 'value-1'), stepContext());
      await store.promote({ path: '__proto__' }, 'rot-1', stepContext());

      expect((await store.readCurrentValue('__proto__'))?.reveal()).toBe('value-1');
      expect((await store.listSecrets()).map((secret) => secret.path)).toEqual(['__proto__']);
    });
  });

  describe('when promoting', () => {
    it('moves pending to current and current to previous', async () => {
      const store = createFileStore(keyEnv());
      await stageAndPromote(store, 'rot-1', 'key-1', 'value-1');
      await stageAndPromote(store, 'rot-2', 'key-2', 'value-2');

      expect((await store.readCurrentValue(PATH))?.reveal()).toBe('value-2');
      expect(await store.describe({ path: PATH }, stepContext())).toEqual({ currentKeyId: 'key-2', pendingRotationId: null });
      const secret = (await decryptStoreFile())[PATH];
      expect(secret).toMatchObject({
        current: { keyId: 'key-2', rotationId: 'rot-2', version: 2, value: 'value-2' },
        previous: { keyId: 'key-1', rotationId: 'rot-1', version: 1, value: 'value-1' },
        pending: null,
        lastVersion: 2,
      });
      expect(secret?.current?.promotedAt).toBe(secret?.updatedAt);
      expect(secret?.previous?.promotedAt).not.toBeNull();
    });

    it('treats a repeated promote as success', async () => {
      const store = createFileStore(keyEnv());
      await stageAndPromote(store, 'rot-1', 'key-1', 'value-1');
      const before = await readFile(storeFile, 'utf8');

      await store.promote({ path: PATH }, 'rot-1', stepContext());

      expect(await readFile(storeFile, 'utf8')).toBe(before);
      expect((await store.readCurrentValue(PATH))?.reveal()).toBe('value-1');
    });

    it('rejects a rotation without a pending version', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      await expect(store.promote({ path: PATH }, 'rot-2', stepContext())).rejects.toMatchObject({
        code: 'MATERIAL_LOST',
        message: 'file store path prod/app/aws has no pending version of rotation rot-2 to promote ' +
          '(the pending version belongs to rotation rot-1)',
      });
      await expect(store.promote({ path: 'prod/unknown' }, 'rot-2', stepContext())).rejects.toMatchObject({
        code: 'MATERIAL_LOST',
        message: 'file store path prod/unknown has no pending version of rotation rot-2 to promote',
      });
    });

    it('rejects promoting a replaced rotation', async () => {
      const store = createFileStore(keyEnv());
      await stageAndPromote(store, 'rot-1', 'key-1', 'value-1');
      await stageAndPromote(store, 'rot-2', 'key-2', 'value-2');

      await expect(store.promote({ path: PATH }, 'rot-1', stepContext())).rejects.toMatchObject({
        code: 'STORE_CONFLICT',
        message: 'rotation rot-1 was promoted at file store path prod/app/aws and has been replaced since by rotation ' +
          'rot-2, so promoting it again would roll that rotation back',
      });
      expect((await store.readCurrentValue(PATH))?.reveal()).toBe('value-2');
    });

    it('returns no pending value after promote', async () => {
      const store = createFileStore(keyEnv());
      await stageAndPromote(store, 'rot-1', 'key-1', 'value-1');

      expect(await store.readPending({ path: PATH }, 'rot-1', stepContext())).toBeNull();
    });
  });

  describe('when discarding', () => {
    it('drops the pending version and keeps the current one', async () => {
      const store = createFileStore(keyEnv());
      await stageAndPromote(store, 'rot-1', 'key-1', 'value-1');
      await store.stage({ path: PATH }, staged('rot-2', 'key-2', 'value-2'), stepContext());

      await store.discard({ path: PATH }, 'rot-2', stepContext());

      expect(await store.readPending({ path: PATH }, 'rot-2', stepContext())).toBeNull();
      expect(await store.describe({ path: PATH }, stepContext())).toEqual({ currentKeyId: 'key-1', pendingRotationId: null });
      expect((await store.readCurrentValue(PATH))?.reveal()).toBe('value-1');
    });

    it('treats an unknown rotation as already gone', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());

      await store.discard({ path: PATH }, 'rot-2', stepContext());
      await store.discard({ path: 'prod/unknown' }, 'rot-2', stepContext());

      expect(await store.describe({ path: PATH }, stepContext())).toEqual({ currentKeyId: null, pendingRotationId: 'rot-1' });
    });

    it('leaves the current rotation in place', async () => {
      const store = createFileStore(keyEnv());
      await stageAndPromote(store, 'rot-1', 'key-1', 'value-1');

      await store.discard({ path: PATH }, 'rot-1', stepContext());

      expect((await store.readCurrentValue(PATH))?.reveal()).toBe('value-1');
    });

    it('numbers versions past a discarded one', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());
      await store.discard({ path: PATH }, 'rot-1', stepContext());
      await stageAndPromote(store, 'rot-2', 'key-2', 'value-2');

      expect((await decryptStoreFile())[PATH]?.current?.version).toBe(2);
      expect((await store.listSecrets())[0]?.version).toBe(2);
    });

    it('allows another rotation after a discard', async () => {
      const store = createFileStore(keyEnv());
      await store.stage({ path: PATH }, staged('rot-1', 'key-1', 'value-1'), stepContext());
      await store.discard({ path: PATH }, 'rot-1', stepContext());

      await store.stage({ path: PATH }, staged('rot-2', 'key-2', 'value-2'), stepContext());

      expect(await store.describe({ path: PATH }, stepContext())).toEqual({ currentKeyId: null, pendingRotationId: 'rot-2' });
    });
  });

  describe('when listing secrets', () => {
    it('returns metadata without values', async () => {
      const store = createFileStore(keyEnv());
      await stageAndPromote(store, 'rot-1', 'key-1', 'value-1');
      await store.stage({ path: 'dev/app/db' }, staged('rot-9', 'key-9', 'value-9'), stepContext());

      const secrets = await store.listSecrets();

      expect(secrets).toEqual([
        { path: 'dev/app/db', currentKeyId: null, version: null, pendingRotationId: 'rot-9', updatedAt: expect.any(String) },
        { path: PATH, currentKeyId: 'key-1', version: 1, pendingRotationId: null, updatedAt: expect.any(String) },
      ]);
      expect(JSON.stringify(secrets)).not.toContain('value-');
    });

    it('returns nothing for a missing file', async () => {
      const store = createFileStore(keyFileEnv());

      expect(await store.listSecrets()).toEqual([]);
      expect(await store.readCurrentValue(PATH)).toBeNull();
      await expect(stat(keyFile)).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });

  describe('when checking', () => {
    it('passes without creating files', async () => {
      const store = createFileStore(keyFileEnv());

      await store.check({ path: PATH }, stepContext());

      await expect(stat(dirname(storeFile))).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('passes on a readable store', async () => {
      const store = createFileStore(keyFileEnv());
      await stageAndPromote(store, 'rot-1', 'key-1', 'value-1');

      await expect(createFileStore(keyFileEnv()).check({ path: PATH }, stepContext())).resolves.toBeUndefined();
    });

    it('fails when the directory cannot be created', async () => {
      await writeFile(join(directory, 'state'), 'a file where the directory should be');
      const store = createFileStore(keyEnv());

      await expect(store.check({ path: PATH }, stepContext())).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: `cannot create directory ${dirname(storeFile)} for the store file: ${join(directory, 'state')} is not a directory`,
      });
    });

    it('fails when the key does not match', async () => {
      await stageAndPromote(createFileStore(keyEnv()), 'rot-1', 'key-1', 'value-1');

      await expect(createFileStore(keyEnv(randomBytes(32))).check({ path: PATH }, stepContext())).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: expect.stringContaining('was encrypted with another master key'),
      });
    });

    it('fails on a key file readable by others', async () => {
      await mkdir(dirname(keyFile), { recursive: true });
      await writeFile(keyFile, MASTER_KEY.toString('hex'), { mode: 0o604 });

      await expect(createFileStore(keyFileEnv()).check({ path: PATH }, stepContext())).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: expect.stringContaining(`Run "chmod 600 ${keyFile}"`),
      });
    });
  });

  describe('when writers run concurrently', () => {
    it('keeps every write of two stores', async () => {
      const stores = [createFileStore(keyFileEnv()), createFileStore(keyFileEnv())];

      await Promise.all(Array.from({ length: 30 }, async (_, index) => {
        const store = stores[index % 2] as FileStore;
        const params = { path: `prod/app-${index}` };
        await store.stage(params, staged(`rot-${index}`, `key-${index}`, `value-${index}`), stepContext());
        await store.promote(params, `rot-${index}`, stepContext());
      }));

      const secrets = await createFileStore(keyFileEnv()).listSecrets();
      expect(secrets).toHaveLength(30);
      expect(secrets.filter((secret) => secret.version === 1 && secret.pendingRotationId === null)).toHaveLength(30);
      for (let index = 0; index < 30; index += 1) {
        expect((await stores[0]?.readCurrentValue(`prod/app-${index}`))?.reveal()).toBe(`value-${index}`);
      }
    });

    it('keeps every write of two processes', async () => {
      const moduleUrl = await transpileModuleTree('providers/file-store/index.ts', join(directory, 'build'));
      const secretUrl = join(directory, 'build', 'src', 'secret.js');
      const script = join(directory, 'stage.mjs');
      await writeFile(script, [
        `import { createFileStore } from ${JSON.stringify(moduleUrl)};`,
        `import { SecretValue } from ${JSON.stringify(secretUrl)};`,
        'const [storeFile, keyFile, worker, count] = process.argv.slice(2);',
        'const store = createFileStore({ REKEY_FILE_STORE: storeFile, REKEY_MASTER_KEY_FILE: keyFile });',
        'const ctx = { logger: { debug() {} }, signal: new AbortController().signal };',
        'await Promise.all(Array.from({ length: Number(count) }, async (_, index) => {',
        '  const params = { path: `${worker}/secret-${index}` };',
        '  const rotationId = `rot-${worker}-${index}`;',
        '  await store.stage(params, { rotationId, keyId: `key-${index}`, value: SecretValue.fromString(`value-${index}`) }, ctx);',
        '  await store.promote(params, rotationId, ctx);',
        '}));',
      ].join('\n'));

      // Neither process finds a key file, so this also checks that both end up with the same key.
      await Promise.all(['a', 'b'].map((worker) => run(process.execPath, [script, storeFile, keyFile, worker, '15'])));

      const secrets = await createFileStore(keyFileEnv()).listSecrets();
      expect(secrets).toHaveLength(30);
      expect(secrets.filter((secret) => secret.path.startsWith('a/') && secret.version === 1)).toHaveLength(15);
      expect(secrets.filter((secret) => secret.path.startsWith('b/') && secret.version === 1)).toHaveLength(15);
    });
  });
});
