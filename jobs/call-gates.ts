import type { Redis } from 'ioredis';
import { DEFAULT_CALL_LIMITS, type CallLimits } from '../src/call-limits.js';
import type { CredentialProvider, SecretStore, StepContext } from '../src/contracts.js';
import { RekeyError, summarizeError } from '../src/errors.js';
import { SecretValue, type Material } from '../src/secret.js';
import { sleep } from '../src/engine/poll.js';

const PROVIDER_METHODS = new Set(['inspect', 'mint', 'apply', 'verify', 'discard', 'disable', 'revoke', 'confirm']);
const STORE_METHODS = new Set(['check', 'stage', 'readPending', 'promote', 'discard', 'describe', 'retire']);

/** A `perSecond` at or above this skips the shared bucket: local adapters declare it. */
export const UNLIMITED_PER_SECOND = 10_000;

/**
 * A token bucket on the Redis server's clock. KEYS[1] is the bucket, ARGV[1] the rate a second,
 * which is also the capacity. Returns 0 when a token was taken, else the milliseconds until one
 * will be there.
 */
const TOKEN_BUCKET_SCRIPT = `
local rate = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or rate
local at = tonumber(bucket[2]) or now
tokens = math.min(rate, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 2000)
return wait
`;

/**
 * The gates of every provider and store kind in one process. Each gate bounds its kind's calls:
 * how many run at once here, how many start per second across all workers (a token bucket in
 * Redis), and how long one may take. A thousand-credential incident then queues inside rekey instead of
 * tripping the cloud's throttling.
 */
export class CallGates {
  private readonly gates = new Map<string, CallGate>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly overrides: ReadonlyMap<string, Partial<CallLimits>>,
  ) {}

  /** Returns gates with the same limits that count the shared rate on another Redis connection. */
  using(redis: Redis): CallGates {
    return new CallGates(redis, this.prefix, this.overrides);
  }

  /** Returns the provider with every asynchronous call passed through its kind's gate. */
  provider(provider: CredentialProvider): CredentialProvider {
    return this.wrap(provider, provider.kind, provider.callLimits, PROVIDER_METHODS);
  }

  store(store: SecretStore): SecretStore {
    return this.wrap(store, store.kind, store.callLimits, STORE_METHODS);
  }

  /** Returns the limits in force for a kind: its override, else its adapter's, else the defaults. */
  limits(kind: string, declared: Partial<CallLimits> | undefined): CallLimits {
    return { ...DEFAULT_CALL_LIMITS, ...declared, ...this.overrides.get(kind) };
  }

  private gate(kind: string, declared: Partial<CallLimits> | undefined): CallGate {
    let gate = this.gates.get(kind);
    if (gate === undefined) {
      gate = new CallGate(kind, this.limits(kind, declared), this.redis, `${this.prefix}:call-rate:${kind}`);
      this.gates.set(kind, gate);
    }
    return gate;
  }

  private wrap<T extends object>(adapter: T, kind: string, declared: Partial<CallLimits> | undefined, methods: ReadonlySet<string>): T {
    const gate = this.gate(kind, declared);
    return new Proxy(adapter, {
      // Members are read from and called on the adapter itself, never on the proxy, because an
      // adapter's private fields (#field) exist only on the adapter object.
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        if (typeof property !== 'string' || !methods.has(property)) return (value as (...args: unknown[]) => unknown).bind(target);
        const method = value as (...args: unknown[]) => Promise<unknown>;
        // Every gated method takes the step context last. The call gets a copy whose signal
        // also aborts at the timeout.
        return (...args: unknown[]) => {
          const ctx = args.at(-1) as StepContext | undefined;
          if (ctx === undefined) return gate.run(property, () => method.apply(target, args), undefined);
          const late = property === 'mint' ? lateMintHandler(target as CredentialProvider, args[0], ctx, kind) : undefined;
          return gate.run(property, (signal) => method.apply(target, [...args.slice(0, -1), { ...ctx, signal }]), ctx.signal, late);
        };
      },
    });
  }
}

/**
 * Returns the handler of a mint that returns after its timeout: the engine has moved on and will
 * mint again, so the late key would be a key no record lists. It is deleted at once.
 */
function lateMintHandler(provider: CredentialProvider, params: unknown, ctx: StepContext, kind: string): (result: unknown) => Promise<void> {
  return async (result) => {
    const material = result as Material;
    for (const value of Object.values(material.fields)) if (value instanceof SecretValue) value.wipe();
    ctx.logger.warn({ provider: kind, keyId: material.keyId }, 'a mint returned after its timeout; deleting the key it created');
    try {
      await provider.discard(params as Record<string, unknown>, material.keyId, ctx);
    } catch (error) {
      ctx.logger.error({ alert: true, provider: kind, keyId: material.keyId, error: summarizeError(error) }, 'could not delete the key of a mint that returned after its timeout; delete it by hand');
    }
  };
}

/** The concurrency slots, the shared rate and the timeout of one kind. */
class CallGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    readonly kind: string,
    readonly limits: CallLimits,
    private readonly redis: Redis,
    private readonly rateKey: string,
  ) {}

  /**
   * Runs one call through the gate. `late`, when given, receives the result of a call that
   * succeeds after its timeout, and such a call is not aborted: a mint aborted in flight may
   * still create a key whose value rekey never receives. The concurrency slot stays taken until
   * the call itself settles, so calls that hang still count against `concurrency`.
   */
  async run<T>(method: string, call: (signal: AbortSignal) => Promise<T>, outer: AbortSignal | undefined, late?: (result: T) => Promise<void>): Promise<T> {
    await this.acquire();
    let settled: Promise<unknown> = Promise.resolve();
    try {
      await this.takeRateToken(outer);
      const controller = new AbortController();
      const onOuterAbort = (): void => controller.abort(outer?.reason);
      outer?.addEventListener('abort', onOuterAbort, { once: true });
      const pending = call(controller.signal);
      settled = pending.then(() => undefined, () => undefined).finally(() => outer?.removeEventListener('abort', onOuterAbort));
      return await this.withTimeout(method, pending, controller, late);
    } finally {
      void settled.finally(() => this.release());
    }
  }

  private async acquire(): Promise<void> {
    if (this.running < this.limits.concurrency) {
      this.running += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.running -= 1;
  }

  /**
   * Takes one token from the kind's bucket in Redis, shared by every worker, waiting while it is
   * empty. The bucket keeps at most `perSecond` tokens and refills at `perSecond` a second, so
   * in any span of t seconds at most `perSecond` × (1 + t) calls start.
   */
  private async takeRateToken(signal: AbortSignal | undefined): Promise<void> {
    // A rate this high bounds nothing a remote service would notice, so no Redis round trip.
    if (this.limits.perSecond >= UNLIMITED_PER_SECOND) return;
    for (;;) {
      const waitMs = Number(await this.redis.eval(TOKEN_BUCKET_SCRIPT, 1, this.rateKey, this.limits.perSecond));
      if (waitMs <= 0) return;
      // A little jitter keeps the waiters of one worker from all waking at the same moment.
      await sleep(waitMs + Math.floor(Math.random() * 20), signal);
    }
  }

  private async withTimeout<T>(method: string, pending: Promise<T>, controller: AbortController, late: ((result: T) => Promise<void>) | undefined): Promise<T> {
    const timeoutMs = this.limits.timeoutMs;
    const timedOut = new RekeyError('TIMEOUT', `${this.kind} ${method} timed out after ${timeoutMs} ms; rekey stopped waiting for it`);
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        expired = true;
        if (late === undefined) controller.abort(timedOut);
        reject(timedOut);
      }, timeoutMs);
    });
    if (late !== undefined) {
      pending.then(async (result) => {
        if (expired) await late(result);
      }, () => undefined);
    }
    try {
      return await Promise.race([pending, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}
