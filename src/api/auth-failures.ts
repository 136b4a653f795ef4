import type { Redis } from 'ioredis';

/**
 * Counts failed authentications per source address in Redis, per minute, shared by every API
 * replica. The route rate limit runs after authentication, so it never counts a request with a
 * wrong token: without this count a caller could try tokens, or load the token store, without
 * bound.
 */
export class AuthFailureLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly perMinute: number,
  ) {}

  private key(ip: string, minute: number): string {
    return `${this.prefix}-auth-failures:${ip}:${minute}`;
  }

  /** Returns the seconds until `ip` may try again, or 0 when it is under the limit. */
  async blockedFor(ip: string): Promise<number> {
    const now = Date.now();
    const minute = Math.floor(now / 60_000);
    const count = Number(await this.redis.get(this.key(ip, minute)) ?? 0);
    return count >= this.perMinute ? Math.ceil(((minute + 1) * 60_000 - now) / 1000) : 0;
  }

  async record(ip: string): Promise<void> {
    const key = this.key(ip, Math.floor(Date.now() / 60_000));
    await this.redis.multi().incr(key).expire(key, 120).exec();
  }
}
