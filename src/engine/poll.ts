import type { PollPolicy } from '../contracts.js';
import { isRekeyError, RekeyError } from '../errors.js';

/** Waits `ms` milliseconds, or rejects as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface PollResult {
  attempts: number;
  elapsedMs: number;
}

/**
 * Calls `attempt` until it succeeds `policy.consecutiveSuccesses` times in a row. A NOT_READY
 * error (the provider is still propagating a change) or another retryable error (throttling, a
 * timeout) resets the streak and waits. Any other error ends the loop at once. When the window
 * closes first, the last error is thrown again, a NOT_READY one marked with how long the loop tried.
 */
export async function pollUntilStable(
  attempt: () => Promise<void>,
  policy: PollPolicy,
  signal?: AbortSignal,
  now: () => number = Date.now,
): Promise<PollResult> {
  const started = now();
  let attempts = 0;
  let streak = 0;
  for (;;) {
    attempts += 1;
    try {
      await attempt();
      streak += 1;
      if (streak >= policy.consecutiveSuccesses) return { attempts, elapsedMs: now() - started };
    } catch (error) {
      if (!isRekeyError(error) || !error.retryable) throw error;
      streak = 0;
      if (now() - started + policy.intervalMs > policy.windowMs) {
        if (error.code !== 'NOT_READY') throw error;
        throw new RekeyError('NOT_READY', `${error.message} (still not ready after ${attempts} attempts in ${now() - started} ms)`, { cause: error });
      }
    }
    await sleep(policy.intervalMs, signal);
  }
}

/**
 * Runs `action`, repeating it while it throws a retryable RekeyError (a store that is sealed,
 * throttled or briefly unreachable), with exponential backoff from `firstDelayMs` up to 10 s,
 * until `budgetMs` has passed. Other errors, and the last retryable one, are thrown.
 */
export async function retryTransient<T>(
  action: () => Promise<T>,
  options: { budgetMs: number; firstDelayMs?: number; signal?: AbortSignal; onRetry?: (error: RekeyError, attempt: number) => void },
): Promise<T> {
  const started = Date.now();
  let delay = options.firstDelayMs ?? 500;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await action();
    } catch (error) {
      if (!isRekeyError(error) || !error.retryable || Date.now() - started + delay > options.budgetMs) throw error;
      options.onRetry?.(error, attempt);
      await sleep(delay, options.signal);
      delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
    }
  }
}

const MAX_RETRY_DELAY_MS = 10_000;
