import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { createGeneratedSecretProvider } from '../../providers/generated-secret/index.js';
import type { CredentialProvider, SecretStore } from '../../src/contracts.js';
import { runRotation, type RotationHooks } from '../../src/engine/rotation.js';
import { initialRotationState, type RotationState } from '../../src/engine/state.js';
import { SecretValue, type Material } from '../../src/secret.js';
import { stepContext } from '../support/aws.js';
import { TEST_FINGERPRINT_KEY } from '../support/context.js';

/*
 * Every SecretValue the engine creates or receives (the generated material, the document it
 * stages, the pending value it reads back on resume) must have its bytes overwritten once the
 * rotation no longer needs them. The provider and store are real, and only their return values are
 * recorded on the way through.
 */

function hooks(saved: RotationState[]): RotationHooks {
  const known = { currentKeyId: null as string | null, unpromoted: [] as string[] };
  return {
    persist: async (state) => void saved.push(structuredClone(state)),
    ledger: {
      known: async () => ({ currentKeyId: known.currentKeyId, unpromotedKeyIds: [...known.unpromoted] }),
      markUnpromoted: async (keyId) => void known.unpromoted.push(keyId),
      forget: async (keyId) => void (known.unpromoted = known.unpromoted.filter((id) => id !== keyId)),
      markCurrent: async (keyId) => void (known.currentKeyId = keyId),
    },
    audit: async () => undefined,
    scheduleRevoke: async () => undefined,
    fingerprint: (value) => value.fingerprint(TEST_FINGERPRINT_KEY),
  };
}

/** Returns the provider and store with every SecretValue they hand out or receive recorded in `seen`. */
function recording(provider: CredentialProvider, store: SecretStore, seen: SecretValue[]): { provider: CredentialProvider; store: SecretStore } {
  const collect = (material: Material): Material => {
    for (const value of Object.values(material.fields)) if (value instanceof SecretValue) seen.push(value);
    return material;
  };
  return {
    provider: new Proxy(provider, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        if (property !== 'generate') return (value as (...a: unknown[]) => unknown).bind(target);
        return (...args: unknown[]) => collect((value as (...a: unknown[]) => Material).apply(target, args));
      },
    }),
    store: new Proxy(store, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (property === 'stage' && typeof value === 'function') {
          return (params: unknown, version: { value: SecretValue }, ctx: unknown) => {
            seen.push(version.value);
            return (value as (...a: unknown[]) => Promise<void>).call(target, params, version, ctx);
          };
        }
        if (property === 'readPending' && typeof value === 'function') {
          return async (...args: unknown[]) => {
            const pending = await (value as (...a: unknown[]) => Promise<SecretValue | null>).apply(target, args);
            if (pending !== null) seen.push(pending);
            return pending;
          };
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }),
  };
}

function zeroed(value: SecretValue): boolean {
  return /^\0+$/.test(value.reveal());
}

describe('secret values in memory', () => {
  const directories: string[] = [];
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
  });

  function fileStore(): SecretStore {
    const directory = mkdtempSync(join(tmpdir(), 'rekey-wipe-'));
    directories.push(directory);
    return createFileStore({ REKEY_FILE_STORE: join(directory, 'store.json'), REKEY_MASTER_KEY: Buffer.alloc(32, 3).toString('base64') }) as unknown as SecretStore;
  }

  it('are wiped after a rotation', async () => {
    const seen: SecretValue[] = [];
    const { provider, store } = recording(createGeneratedSecretProvider(), fileStore(), seen);
    const state = await runRotation({ provider, params: {}, stores: [{ kind: 'file', store, params: { path: 'demo/token' } }], gracePeriodMs: 0 }, initialRotationState(), stepContext({ mode: 'incident' }), hooks([]));

    expect(state.outcome).toBe('rotated');
    expect(seen).toHaveLength(2);
    expect(seen.map(zeroed)).toEqual([true, true]);
  });

  it('are wiped after a resumed rotation', async () => {
    const seen: SecretValue[] = [];
    const realStore = fileStore();
    const { provider, store } = recording(createGeneratedSecretProvider(), realStore, seen);
    const target = { provider, params: {}, stores: [{ kind: 'file', store, params: { path: 'demo/token' } }], gracePeriodMs: 0 };
    const saved: RotationState[] = [];
    const ctx = stepContext({ mode: 'incident' });

    // The first attempt stops at the boundary after staging, as a crashed worker would.
    await expect(runRotation(target, initialRotationState(), ctx, { ...hooks(saved), atBoundary: (point) => {
      if (point === 'staged') throw new Error('worker died');
    } })).rejects.toThrow('worker died');
    const resumedFrom = saved.at(-1);
    expect(resumedFrom?.staged).toBe(true);

    const state = await runRotation(target, structuredClone(resumedFrom as RotationState), ctx, hooks([]));
    expect(state.outcome).toBe('rotated');
    // The first attempt's material and staged document, then the pending value read back on resume.
    expect(seen).toHaveLength(3);
    expect(seen.map(zeroed)).toEqual([true, true, true]);
  });
});
