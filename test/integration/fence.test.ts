import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Records } from '../../jobs/records.js';
import { REDIS_URL } from '../support/harness.js';

describe('rotation fence', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = `rekey-fence-${randomUUID()}`;
  const records = new Records(redis, prefix);

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('passes to the worker that took it last', async () => {
    const rotationId = randomUUID();
    const first = await records.takeFence(rotationId);
    expect(await records.holdsFence(rotationId, first)).toBe(true);

    const second = await records.takeFence(rotationId);
    expect(second).toBe(first + 1);
    expect(await records.holdsFence(rotationId, first)).toBe(false);
    expect(await records.holdsFence(rotationId, second)).toBe(true);
  });

  it('is separate for each rotation', async () => {
    const first = randomUUID();
    const other = randomUUID();
    const token = await records.takeFence(first);
    await records.takeFence(other);
    await records.takeFence(other);
    expect(await records.holdsFence(first, token)).toBe(true);
  });
});
