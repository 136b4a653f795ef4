import { describe, expect, it } from 'vitest';
import { pollUntilStable, retryTransient } from '../../src/engine/poll.js';
import { RekeyError } from '../../src/errors.js';

describe('retryTransient', () => {
  it('repeats a retryable failure until it succeeds', async () => {
    let calls = 0;
    const result = await retryTransient(async () => {
      calls += 1;
      if (calls < 3) throw new RekeyError('UNAVAILABLE', 'sealed');
      return 'written';
    }, { budgetMs: 5000, firstDelayMs: 10 });
    expect(result).toBe('written');
    expect(calls).toBe(3);
  });

  it('throws a non-retryable failure at once', async () => {
    let calls = 0;
    await expect(retryTransient(async () => {
      calls += 1;
      throw new RekeyError('STORE_CONFLICT', 'cas mismatch');
    }, { budgetMs: 5000, firstDelayMs: 10 })).rejects.toMatchObject({ code: 'STORE_CONFLICT' });
    expect(calls).toBe(1);
  });

  it('gives up when the budget is spent', async () => {
    let calls = 0;
    await expect(retryTransient(async () => {
      calls += 1;
      throw new RekeyError('UNAVAILABLE', 'sealed');
    }, { budgetMs: 100, firstDelayMs: 40 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(calls).toBe(2);
  });
});

describe('pollUntilStable', () => {
  it('requires consecutive successes after NOT_READY', async () => {
    const outcomes = ['not-ready', 'ok', 'not-ready', 'ok', 'ok'];
    let calls = 0;
    const result = await pollUntilStable(async () => {
      const outcome = outcomes[calls];
      calls += 1;
      if (outcome === 'not-ready') throw new RekeyError('NOT_READY', 'propagating');
    }, { windowMs: 5000, intervalMs: 5, consecutiveSuccesses: 2 });
    expect(result.attempts).toBe(5);
  });

  it('rethrows NOT_READY when the window closes', async () => {
    await expect(pollUntilStable(async () => {
      throw new RekeyError('NOT_READY', 'propagating');
    }, { windowMs: 50, intervalMs: 20, consecutiveSuccesses: 1 })).rejects.toThrow(/still not ready after \d+ attempts/);
  });

  it('stops at once on another error', async () => {
    let calls = 0;
    await expect(pollUntilStable(async () => {
      calls += 1;
      throw new RekeyError('VERIFY_FAILED', 'wrong user');
    }, { windowMs: 5000, intervalMs: 5, consecutiveSuccesses: 1 })).rejects.toMatchObject({ code: 'VERIFY_FAILED' });
    expect(calls).toBe(1);
  });

  it('keeps polling through throttling', async () => {
    let calls = 0;
    const result = await pollUntilStable(async () => {
      calls += 1;
      if (calls === 1) throw new RekeyError('THROTTLED', 'Rate exceeded');
    }, { windowMs: 5000, intervalMs: 10, consecutiveSuccesses: 2 });
    expect(result.attempts).toBe(3);
  });

  it('throws throttling unchanged when the window closes', async () => {
    const error = await pollUntilStable(async () => {
      throw new RekeyError('THROTTLED', 'Rate exceeded');
    }, { windowMs: 50, intervalMs: 20, consecutiveSuccesses: 1 }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'THROTTLED', message: 'Rate exceeded' });
  });

  it('stops at once on a non-retryable error', async () => {
    let calls = 0;
    await expect(pollUntilStable(async () => {
      calls += 1;
      throw new RekeyError('VERIFY_FAILED', 'wrong user');
    }, { windowMs: 5000, intervalMs: 10, consecutiveSuccesses: 1 })).rejects.toMatchObject({ code: 'VERIFY_FAILED' });
    expect(calls).toBe(1);
  });
});
