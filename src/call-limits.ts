import type { Env } from './contracts.js';
import { ConfigError } from './config.js';

/** Bounds on the calls rekey makes to one provider or store kind. */
export interface CallLimits {
  /** Calls of this kind in flight at once in one worker process. */
  concurrency: number;
  /** Calls of this kind started per second, across every worker that shares the Redis. */
  perSecond: number;
  /** Time after which rekey abandons a call and fails it with TIMEOUT, in milliseconds. */
  timeoutMs: number;
}

/** Limits of a kind that declares none. */
export const DEFAULT_CALL_LIMITS: CallLimits = { concurrency: 8, perSecond: 20, timeoutMs: 30_000 };

const FIELDS: Record<keyof CallLimits, { min: number; max: number }> = {
  concurrency: { min: 1, max: 1000 },
  perSecond: { min: 1, max: 100_000 },
  timeoutMs: { min: 100, max: 600_000 },
};

/**
 * Reads REKEY_CALL_LIMITS, which overrides the limits of some kinds, for example
 * `aws-iam-access-key=concurrency:2,perSecond:5;vault-kv=timeoutMs:10000`. Kinds it does not
 * name keep the limits their adapter declares. With `knownKinds`, a kind outside it is an error,
 * so a misspelt kind does not go unnoticed.
 */
export function readCallLimitOverrides(env: Env, knownKinds?: ReadonlySet<string>): Map<string, Partial<CallLimits>> {
  const overrides = new Map<string, Partial<CallLimits>>();
  const text = env.REKEY_CALL_LIMITS?.trim() ?? '';
  if (text === '') return overrides;

  for (const entry of text.split(';').map((part) => part.trim()).filter((part) => part !== '')) {
    const [kind, settings] = entry.split('=', 2).map((part) => part.trim());
    if (kind === undefined || kind === '' || settings === undefined || settings === '') {
      throw new ConfigError(`REKEY_CALL_LIMITS entry "${entry}" is invalid: expected kind=name:value,name:value`);
    }
    if (overrides.has(kind)) throw new ConfigError(`REKEY_CALL_LIMITS names "${kind}" twice: give each kind one entry`);
    const limits: Partial<CallLimits> = {};
    for (const setting of settings.split(',')) {
      const [name = '', value = ''] = setting.split(':', 2).map((part) => part.trim());
      if (!Object.hasOwn(FIELDS, name)) {
        throw new ConfigError(`REKEY_CALL_LIMITS entry "${entry}" has an unknown setting "${name}": expected concurrency, perSecond or timeoutMs`);
      }
      const field = FIELDS[name as keyof CallLimits];
      if (Object.hasOwn(limits, name)) throw new ConfigError(`REKEY_CALL_LIMITS entry "${entry}" sets ${name} twice`);
      const number = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
      if (!Number.isSafeInteger(number) || number < field.min || number > field.max) {
        throw new ConfigError(`REKEY_CALL_LIMITS entry "${entry}" has an invalid ${name}: expected an integer from ${field.min} to ${field.max}`);
      }
      limits[name as keyof CallLimits] = number;
    }
    overrides.set(kind, limits);
  }
  if (knownKinds !== undefined) {
    const unknown = [...overrides.keys()].filter((kind) => !knownKinds.has(kind));
    if (unknown.length > 0) {
      throw new ConfigError(`REKEY_CALL_LIMITS names unknown kinds ${unknown.map((kind) => `"${kind}"`).join(', ')}: expected provider or store kinds such as ${[...knownKinds].slice(0, 3).join(', ')}`);
    }
  }
  return overrides;
}
