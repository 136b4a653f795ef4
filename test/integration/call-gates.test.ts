import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallGates } from '../../jobs/call-gates.js';
import { readCallLimitOverrides, type CallLimits } from '../../src/call-limits.js';
import type { CredentialProvider, StepContext } from '../../src/contracts.js';
import { ConfigError } from '../../src/config.js';
import { SecretValue } from '../../src/secret.js';
import { stepContext } from '../support/aws.js';
import { REDIS_ADMIN_URL } from '../support/redis.js';

interface Recorder {
  provider: CredentialProvider;
  starts: number[];
  maxInFlight: () => number;
  signals: AbortSignal[];
}

/** Builds a provider whose inspect waits `holdMs` (forever when null) and records each call. */
function recordingProvider(kind: string, holdMs: number | null, callLimits: Partial<CallLimits>): Recorder {
  let inFlight = 0;
  let max = 0;
  const starts: number[] = [];
  const signals: AbortSignal[] = [];
  const provider: CredentialProvider = {
    kind,
    family: 'set',
    paramsSchema: {},
    secretFields: [],
    verifyPolicy: { windowMs: 1000, intervalMs: 100, consecutiveSuccesses: 1 },
    callLimits,
    async inspect(_params, _known, ctx: StepContext) {
      starts.push(Date.now());
      signals.push(ctx.signal);
      inFlight += 1;
      max = Math.max(max, inFlight);
      try {
        await new Promise<void>((resolve) => {
          if (holdMs !== null) setTimeout(resolve, holdMs);
        });
      } finally {
        inFlight -= 1;
      }
      return { currentKeyId: null, orphanKeyIds: [] };
    },
    async verify() {},
    async discard() {},
    async revoke() {},
  };
  return { provider, starts, maxInFlight: () => max, signals };
}

const KNOWN = { currentKeyId: null, unpromotedKeyIds: [] };

describe('provider call gates', () => {
  let redis: Redis;
  let gates: CallGates;

  beforeAll(() => {
    redis = new Redis(REDIS_ADMIN_URL);
    gates = new CallGates(redis, `rekey-test-gates-${randomBytes(4).toString('hex')}`, new Map([['overridden', { concurrency: 1 }]]));
  });

  afterAll(() => {
    redis.disconnect();
  });

  it('caps calls in flight', async () => {
    const recorder = recordingProvider('slow-kind', 50, { concurrency: 2, perSecond: 1000 });
    const gated = gates.provider(recorder.provider);
    await Promise.all(Array.from({ length: 6 }, () => gated.inspect({}, KNOWN, stepContext())));
    expect(recorder.starts).toHaveLength(6);
    expect(recorder.maxInFlight()).toBe(2);
  });

  it('caps calls started per second', async () => {
    const recorder = recordingProvider('rated-kind', 0, { concurrency: 100, perSecond: 3 });
    const gated = gates.provider(recorder.provider);
    await Promise.all(Array.from({ length: 7 }, () => gated.inspect({}, KNOWN, stepContext())));
    expect(recorder.starts).toHaveLength(7);
    // The bucket allows a burst of 3, then one call every 333 ms: the 7th starts at least
    // 4/3 s after the first (less a few milliseconds of rounding between the two clocks).
    const sorted = [...recorder.starts].sort((left, right) => left - right);
    expect(sorted[6]! - sorted[0]!).toBeGreaterThanOrEqual(1300);
    expect(sorted[3]! - sorted[0]!).toBeGreaterThanOrEqual(300);
  });

  it('times out a call and aborts it', async () => {
    const recorder = recordingProvider('hanging-kind', null, { timeoutMs: 200 });
    const gated = gates.provider(recorder.provider);
    await expect(gated.inspect({}, KNOWN, stepContext())).rejects.toMatchObject({
      code: 'TIMEOUT',
      retryable: true,
      message: 'hanging-kind inspect timed out after 200 ms; rekey stopped waiting for it',
    });
    expect(recorder.signals[0]?.aborted).toBe(true);
    expect((recorder.signals[0]?.reason as { code: string }).code).toBe('TIMEOUT');
  });

  it('deletes the key of a mint that answers late', async () => {
    const discarded: string[] = [];
    let mintSignal: AbortSignal | undefined;
    const secret = SecretValue.fromString('late-secret');
    const provider: CredentialProvider = {
      ...recordingProvider('late-kind', 0, { timeoutMs: 100 }).provider,
      family: 'minted',
      async mint(_params, ctx) {
        mintSignal = ctx.signal;
        await new Promise((resolve) => setTimeout(resolve, 300));
        return { keyId: 'late-key', fields: { secret } };
      },
      async discard(_params, keyId) {
        discarded.push(keyId);
      },
    };
    const gated = gates.provider(provider);

    await expect(gated.mint!({}, stepContext())).rejects.toMatchObject({ code: 'TIMEOUT' });
    await new Promise((resolve) => setTimeout(resolve, 400));

    expect(mintSignal?.aborted).toBe(false);
    expect(discarded).toEqual(['late-key']);
    expect(/^\0+$/.test(secret.reveal())).toBe(true);
  });

  it('keeps the slot of a timed-out call until it ends', async () => {
    const recorder = recordingProvider('held-kind', 300, { concurrency: 1, timeoutMs: 100 });
    const gated = gates.provider(recorder.provider);

    const first = gated.inspect({}, KNOWN, stepContext()).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const second = gated.inspect({}, KNOWN, stepContext()).catch((error: unknown) => error);
    await first;
    await second;

    // The second call could start only after the first, timed out at 100 ms, really ended at 300 ms.
    expect(recorder.maxInFlight()).toBe(1);
    expect(recorder.starts[1]! - recorder.starts[0]!).toBeGreaterThanOrEqual(290);
  });

  it('lets an override win over the adapter', () => {
    expect(gates.limits('overridden', { concurrency: 5, perSecond: 7 })).toEqual({ concurrency: 1, perSecond: 7, timeoutMs: 30_000 });
    expect(gates.limits('plain', undefined)).toEqual({ concurrency: 8, perSecond: 20, timeoutMs: 30_000 });
  });

  it('passes non-gated members through', () => {
    const recorder = recordingProvider('plain-kind', 0, {});
    const gated = gates.provider(recorder.provider);
    expect(gated.kind).toBe('plain-kind');
    expect(gated.family).toBe('set');
  });
});

describe('REKEY_CALL_LIMITS', () => {
  it('parses kinds and settings', () => {
    const overrides = readCallLimitOverrides({ REKEY_CALL_LIMITS: 'aws-iam-access-key=concurrency:2,perSecond:5; vault-kv=timeoutMs:10000;' });
    expect(Object.fromEntries(overrides)).toEqual({ 'aws-iam-access-key': { concurrency: 2, perSecond: 5 }, 'vault-kv': { timeoutMs: 10_000 } });
  });

  it('rejects an unknown setting', () => {
    expect(() => readCallLimitOverrides({ REKEY_CALL_LIMITS: 'vault-kv=burst:3' })).toThrow(
      new ConfigError('REKEY_CALL_LIMITS entry "vault-kv=burst:3" has an unknown setting "burst": expected concurrency, perSecond or timeoutMs'),
    );
  });

  it('rejects a value out of range', () => {
    expect(() => readCallLimitOverrides({ REKEY_CALL_LIMITS: 'vault-kv=concurrency:0' })).toThrow(
      'REKEY_CALL_LIMITS entry "vault-kv=concurrency:0" has an invalid concurrency: expected an integer from 1 to 1000',
    );
  });

  it('rejects inherited names, hex values and repeats', () => {
    expect(() => readCallLimitOverrides({ REKEY_CALL_LIMITS: 'vault-kv=toString:5' })).toThrow('REKEY_CALL_LIMITS entry "vault-kv=toString:5" has an unknown setting "toString"');
    expect(() => readCallLimitOverrides({ REKEY_CALL_LIMITS: 'vault-kv=concurrency:0x10' })).toThrow('has an invalid concurrency: expected an integer from 1 to 1000');
    expect(() => readCallLimitOverrides({ REKEY_CALL_LIMITS: 'vault-kv=concurrency:2,concurrency:3' })).toThrow('REKEY_CALL_LIMITS entry "vault-kv=concurrency:2,concurrency:3" sets concurrency twice');
    expect(() => readCallLimitOverrides({ REKEY_CALL_LIMITS: 'vault-kv=concurrency:2;vault-kv=perSecond:3' })).toThrow('REKEY_CALL_LIMITS names "vault-kv" twice: give each kind one entry');
  });

  it('rejects an unknown kind', () => {
    expect(() => readCallLimitOverrides({ REKEY_CALL_LIMITS: 'aws-iam=concurrency:2' }, new Set(['aws-iam-access-key', 'file']))).toThrow(
      'REKEY_CALL_LIMITS names unknown kinds "aws-iam": expected provider or store kinds such as aws-iam-access-key, file',
    );
  });

  it('rejects an entry without settings', () => {
    expect(() => readCallLimitOverrides({ REKEY_CALL_LIMITS: 'vault-kv' })).toThrow('REKEY_CALL_LIMITS entry "vault-kv" is invalid: expected kind=name:value,name:value');
  });
});

describe('a gated adapter with private fields', () => {
  it('keeps its private fields reachable', async () => {
    class Sealed {
      readonly kind = 'sealed-kind';
      readonly paramsSchema = {};
      #calls = 0;
      get calls(): number {
        return this.#calls;
      }
      async check(): Promise<void> {
        this.#calls += 1;
      }
      count(): number {
        return this.#calls;
      }
    }
    const redis = new Redis(REDIS_ADMIN_URL);
    try {
      const gates = new CallGates(redis, `rekey-test-gates-${randomBytes(4).toString('hex')}`, new Map());
      const sealed = new Sealed();
      const gated = gates.store(sealed as unknown as Parameters<CallGates['store']>[0]) as unknown as Sealed;
      await gated.check();
      expect(gated.calls).toBe(1);
      expect(gated.count()).toBe(1);
    } finally {
      redis.disconnect();
    }
  });
});
