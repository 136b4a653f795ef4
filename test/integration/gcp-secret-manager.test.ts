import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGcpSecretManagerStore, type GcpSecretManagerStore } from '../../providers/gcp-secret-manager/index.js';
import { RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { gcpStepContext, startGcpTestbed, type GcpTestbed } from '../support/gcp.js';

const PROJECT = 'rekey-tests';

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  const error: unknown = await promise.then(() => undefined, (reason: unknown) => reason);
  expect(error).toBeInstanceOf(RekeyError);
  return error as RekeyError;
}

describe('gcp-secret-manager store', () => {
  let testbed: GcpTestbed;
  let store: GcpSecretManagerStore;
  let secret: string;
  let params: { project: string; secret: string };

  beforeEach(async () => {
    testbed = await startGcpTestbed();
    store = createGcpSecretManagerStore(testbed.env);
    secret = `app-key-${randomBytes(4).toString('hex')}`;
    params = { project: PROJECT, secret };
  });

  afterEach(async () => {
    await store?.close();
    await testbed?.close();
  });

  function versions(secretId = secret): Array<{ number: number; state: string; value: string | null }> {
    return testbed.fake.secretVersions(PROJECT, secretId);
  }

  describe('when the secret has a current value', () => {
    beforeEach(() => {
      testbed.fake.createSecret(PROJECT, secret, ['{"old":true}']);
    });

    it('stages without changing latest', async () => {
      const ctx = gcpStepContext();

      await store.stage(params, { rotationId: ctx.rotationId, keyId: 'key-2', value: SecretValue.fromString('{"new":true}') }, ctx);

      expect(versions()).toEqual([{ number: 1, state: 'ENABLED', value: '{"old":true}' }]);
      expect(versions(`${secret}-rekey-pending`)).toEqual([{ number: 1, state: 'ENABLED', value: '{"new":true}' }]);
      expect(await store.describe(params, ctx)).toEqual({ currentKeyId: null, pendingRotationId: ctx.rotationId });
      expect((await store.readPending(params, ctx.rotationId, ctx))?.reveal()).toBe('{"new":true}');
    });

    it('promotes the pending value, then retires the old version', async () => {
      const ctx = gcpStepContext();
      await store.stage(params, { rotationId: ctx.rotationId, keyId: 'key-2', value: SecretValue.fromString('{"new":true}') }, ctx);

      await store.promote(params, ctx.rotationId, ctx);
      await store.promote(params, ctx.rotationId, ctx);

      // A consumer pinned to version 1 keeps working until the old credential is revoked.
      expect(versions().map((version) => [version.number, version.state])).toEqual([[1, 'ENABLED'], [2, 'ENABLED']]);
      await store.retire(params, ctx);
      expect(versions()).toEqual([
        { number: 1, state: 'DISABLED', value: '{"old":true}' },
        { number: 2, state: 'ENABLED', value: '{"new":true}' },
      ]);
      expect(versions(`${secret}-rekey-pending`)).toEqual([{ number: 1, state: 'DESTROYED', value: null }]);
      expect(testbed.fake.secretAnnotations(PROJECT, secret)).toEqual({ 'rekey-rotation-id': ctx.rotationId, 'rekey-key-id': 'key-2', 'rekey-version': '2' });
      expect(await store.describe(params, ctx)).toEqual({ currentKeyId: 'key-2', pendingRotationId: null });
      expect((await store.readPending(params, ctx.rotationId, ctx))?.reveal()).toBe('{"new":true}');
    });

    it('adds one version when a promote resumes after a crash', async () => {
      const ctx = gcpStepContext();
      await store.stage(params, { rotationId: ctx.rotationId, keyId: 'key-2', value: SecretValue.fromString('{"new":true}') }, ctx);
      // The second annotation update of the promote (after the copy) fails, as a crash would.
      testbed.fake.injectFault({
        method: 'PATCH', path: new RegExp(`/secrets/${secret}$`), status: 503, skip: 1, times: 1,
        body: { error: { code: 503, message: 'The service is currently unavailable.', status: 'UNAVAILABLE' } },
      });

      const error = await rejection(store.promote(params, ctx.rotationId, ctx));
      await store.promote(params, ctx.rotationId, ctx);

      expect(error.code).toBe('UNAVAILABLE');
      expect(versions().map((version) => [version.number, version.state])).toEqual([[1, 'ENABLED'], [2, 'ENABLED']]);
      expect(testbed.fake.secretAnnotations(PROJECT, secret)).toEqual({ 'rekey-rotation-id': ctx.rotationId, 'rekey-key-id': 'key-2', 'rekey-version': '2' });
    });

    it('discard destroys the pending copy only', async () => {
      const ctx = gcpStepContext();
      await store.stage(params, { rotationId: ctx.rotationId, keyId: 'key-2', value: SecretValue.fromString('{"new":true}') }, ctx);

      await store.discard(params, ctx.rotationId, ctx);
      await store.discard(params, ctx.rotationId, ctx);

      expect(versions()).toEqual([{ number: 1, state: 'ENABLED', value: '{"old":true}' }]);
      expect(versions(`${secret}-rekey-pending`)).toEqual([{ number: 1, state: 'DESTROYED', value: null }]);
      expect(await store.readPending(params, ctx.rotationId, ctx)).toBeNull();
      expect(await store.describe(params, ctx)).toEqual({ currentKeyId: null, pendingRotationId: null });
    });

    it("reports another rotation's pending value as a conflict", async () => {
      const first = gcpStepContext();
      const second = gcpStepContext();
      await store.stage(params, { rotationId: first.rotationId, keyId: 'key-2', value: SecretValue.fromString('{"first":true}') }, first);

      const checked = await rejection(store.check(params, second));
      const staged = await rejection(store.stage(params, { rotationId: second.rotationId, keyId: 'key-3', value: SecretValue.fromString('{"second":true}') }, second));

      for (const error of [checked, staged]) {
        expect(error.code).toBe('STORE_CONFLICT');
        expect(error.message).toBe(
          `secret ${secret}-rekey-pending of project ${PROJECT} holds a pending version of another rotation (${first.rotationId}). ` +
            "Finish or discard that rotation, or destroy the pending secret's versions, then retry",
        );
      }
      expect(versions(`${secret}-rekey-pending`)).toEqual([{ number: 1, state: 'ENABLED', value: '{"first":true}' }]);
    });

    it('replaces the pending value of an earlier attempt of the same rotation', async () => {
      const ctx = gcpStepContext();
      await store.stage(params, { rotationId: ctx.rotationId, keyId: 'key-2', value: SecretValue.fromString('{"attempt":1}') }, ctx);

      await store.stage(params, { rotationId: `${ctx.rotationId}-2`, keyId: 'key-3', value: SecretValue.fromString('{"attempt":2}') }, ctx);
      await store.promote(params, `${ctx.rotationId}-2`, ctx);

      expect(versions(`${secret}-rekey-pending`).map((version) => version.state)).toEqual(['DESTROYED', 'DESTROYED']);
      expect(versions().at(-1)).toEqual({ number: 2, state: 'ENABLED', value: '{"attempt":2}' });
    });

    it('fails a promote without a staged value', async () => {
      const ctx = gcpStepContext();
      const rotationId = randomUUID();

      const error = await rejection(store.promote(params, rotationId, ctx));

      expect(error.code).toBe('MATERIAL_LOST');
      expect(error.message).toBe(`secret ${secret}-rekey-pending of project ${PROJECT} has no pending version ${rotationId} to promote: it was never staged or was discarded`);
    });
  });

  describe('when the secret does not exist', () => {
    it('creates it without versions at stage', async () => {
      const ctx = gcpStepContext();
      await store.check(params, ctx);

      await store.stage(params, { rotationId: ctx.rotationId, keyId: 'key-1', value: SecretValue.fromString('{"first":true}') }, ctx);

      expect(testbed.fake.hasSecret(PROJECT, secret)).toBe(true);
      expect(versions()).toEqual([]);
      await store.promote(params, ctx.rotationId, ctx);
      expect(versions()).toEqual([{ number: 1, state: 'ENABLED', value: '{"first":true}' }]);
    });
  });
});
