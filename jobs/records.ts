import type { Redis } from 'ioredis';
import type { KnownKeys } from '../src/contracts.js';
import type { CredentialLedger } from '../src/engine/rotation.js';
import type { FindingResult } from './findings.js';
import type { LastRotation, RunRecord } from './types.js';

/** How long a run record is kept, like the jobs of the run (30 days). */
const RUN_TTL_SECONDS = 30 * 24 * 3600;

/** How long an active-rotation marker lives if its rotation never clears it (a lost Redis write). */
const ACTIVE_MARKER_TTL_SECONDS = 7 * 24 * 3600;
/** How long rekey remembers a key whose revoke never finished: longer than any grace period. */
const UNREVOKED_TTL_SECONDS = 365 * 24 * 3600;

/**
 * rekey's own records in Redis, beside BullMQ's: runs, the per-credential ledger of key ids, and
 * the marker that allows one rotation in progress per credential. Everything here is ids and
 * outcomes, never values.
 */
export class Records {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private runKey(runId: string): string {
    return `${this.prefix}:run:${runId}`;
  }

  private credentialKey(environment: string, credentialId: string): string {
    return `${this.prefix}:credential:${environment}:${credentialId}`;
  }

  private activeKey(environment: string, credentialId: string): string {
    return `${this.prefix}:active:${environment}:${credentialId}`;
  }

  async saveRun(run: RunRecord): Promise<void> {
    await this.redis.set(this.runKey(run.runId), JSON.stringify(run), 'EX', RUN_TTL_SECONDS);
  }

  async getRun(runId: string): Promise<RunRecord | null> {
    const text = await this.redis.get(this.runKey(runId));
    return text === null ? null : (JSON.parse(text) as RunRecord);
  }

  async updateRun(runId: string, change: (run: RunRecord) => void): Promise<RunRecord> {
    const run = await this.getRun(runId);
    if (run === null) throw new Error(`run ${runId} not found`);
    change(run);
    await this.saveRun(run);
    return run;
  }

  async deleteRun(runId: string): Promise<void> {
    await this.redis.del(this.runKey(runId));
  }

  /**
   * Claims a credential for a rotation. Returns null when the claim succeeded, or the value of
   * the existing claim (`runId/rotationId`) when another rotation has claimed the credential.
   */
  async claim(environment: string, credentialId: string, runId: string, rotationId: string): Promise<{ runId: string; rotationId: string } | null> {
    const key = this.activeKey(environment, credentialId);
    const set = await this.redis.set(key, `${runId}/${rotationId}`, 'EX', ACTIVE_MARKER_TTL_SECONDS, 'NX');
    if (set === 'OK') return null;
    const holder = await this.redis.get(key);
    if (holder === null) return this.claim(environment, credentialId, runId, rotationId);
    const [holderRun = '', holderRotation = ''] = holder.split('/');
    return { runId: holderRun, rotationId: holderRotation };
  }

  /** Releases a credential's claim if this rotation still holds it. */
  async release(environment: string, credentialId: string, rotationId: string): Promise<void> {
    const key = this.activeKey(environment, credentialId);
    await this.redis.eval(
      "local v = redis.call('GET', KEYS[1]); if v and string.sub(v, -string.len(ARGV[1])) == ARGV[1] then return redis.call('DEL', KEYS[1]) end; return 0",
      1, key, `/${rotationId}`,
    );
  }

  async activeRotation(environment: string, credentialId: string): Promise<{ runId: string; rotationId: string } | null> {
    const holder = await this.redis.get(this.activeKey(environment, credentialId));
    if (holder === null) return null;
    const [runId = '', rotationId = ''] = holder.split('/');
    return { runId, rotationId };
  }

  async setLastRotation(environment: string, credentialId: string, last: LastRotation): Promise<void> {
    await this.redis.hset(this.credentialKey(environment, credentialId), 'last', JSON.stringify(last));
  }

  async lastRotation(environment: string, credentialId: string): Promise<LastRotation | null> {
    const text = await this.redis.hget(this.credentialKey(environment, credentialId), 'last');
    return text === null ? null : (JSON.parse(text) as LastRotation);
  }

  private leakKey(environment: string, credentialId: string, keyId: string): string {
    return `${this.prefix}:leaked:${environment}:${credentialId}:${keyId}`;
  }

  private pendingRevokeKey(environment: string, credentialId: string, keyId: string): string {
    return `${this.prefix}:pending-revoke:${environment}:${credentialId}:${keyId}`;
  }

  /** Records that a scanner reported a key as leaked, so no grace period is granted to it. */
  async markLeaked(environment: string, credentialId: string, keyId: string): Promise<void> {
    await this.redis.set(this.leakKey(environment, credentialId, keyId), new Date().toISOString(), 'EX', ACTIVE_MARKER_TTL_SECONDS);
  }

  async isLeaked(environment: string, credentialId: string, keyId: string): Promise<boolean> {
    return (await this.redis.exists(this.leakKey(environment, credentialId, keyId))) === 1;
  }

  private escalationKey(rotationId: string): string {
    return `${this.prefix}:escalated:${rotationId}`;
  }

  /** Records that an incident request joined a running rotation: its old key gets no grace period. */
  async escalate(rotationId: string): Promise<void> {
    await this.redis.set(this.escalationKey(rotationId), new Date().toISOString(), 'EX', ACTIVE_MARKER_TTL_SECONDS);
  }

  async isEscalated(rotationId: string): Promise<boolean> {
    return (await this.redis.exists(this.escalationKey(rotationId))) === 1;
  }

  /** Records the delayed job that will delete an old key when its grace period ends. */
  async setPendingRevoke(environment: string, credentialId: string, keyId: string, jobId: string): Promise<void> {
    await this.redis.set(this.pendingRevokeKey(environment, credentialId, keyId), jobId, 'EX', ACTIVE_MARKER_TTL_SECONDS);
  }

  async pendingRevoke(environment: string, credentialId: string, keyId: string): Promise<string | null> {
    return this.redis.get(this.pendingRevokeKey(environment, credentialId, keyId));
  }

  private fenceKey(rotationId: string): string {
    return `${this.prefix}:fence:${rotationId}`;
  }

  /**
   * Takes the fence of a rotation: a number that only increases. Each worker that starts (or
   * takes over) the rotation's job gets a higher one, and a worker whose number is no longer the
   * highest has lost the rotation to another and must stop changing anything.
   */
  async takeFence(rotationId: string): Promise<number> {
    const token = await this.redis.incr(this.fenceKey(rotationId));
    await this.redis.expire(this.fenceKey(rotationId), ACTIVE_MARKER_TTL_SECONDS);
    return token;
  }

  async holdsFence(rotationId: string, token: number): Promise<boolean> {
    return Number(await this.redis.get(this.fenceKey(rotationId))) === token;
  }

  private unrevokedKey(environment: string, credentialId: string): string {
    return `${this.prefix}:unrevoked:${environment}:${credentialId}`;
  }

  /**
   * Records a replaced key whose revoke never finished, because its revoke job failed for good or
   * an admin force-closed the rotation. The key may still work, so a later leak report of it
   * starts an incident rotation, however many rotations came in between.
   */
  async markUnrevoked(environment: string, credentialId: string, keyId: string): Promise<void> {
    const key = this.unrevokedKey(environment, credentialId);
    await this.redis.multi().sadd(key, keyId).expire(key, UNREVOKED_TTL_SECONDS).exec();
  }

  async clearUnrevoked(environment: string, credentialId: string, keyId: string): Promise<void> {
    await this.redis.srem(this.unrevokedKey(environment, credentialId), keyId);
  }

  async isUnrevoked(environment: string, credentialId: string, keyId: string): Promise<boolean> {
    return (await this.redis.sismember(this.unrevokedKey(environment, credentialId), keyId)) === 1;
  }

  /**
   * Records that this process cannot write the audit trail, so it starts no step. The API's
   * /readyz reports every process that did so recently.
   */
  async reportAuditFailure(processId: string, reason: string, since: string): Promise<void> {
    const entry: AuditFailure = { processId, reason, since, seenAt: new Date().toISOString() };
    await this.redis.hset(`${this.prefix}:audit-failures`, processId, JSON.stringify(entry));
  }

  async clearAuditFailure(processId: string): Promise<void> {
    await this.redis.hdel(`${this.prefix}:audit-failures`, processId);
  }

  /** Lists the processes that failed to write the audit trail within the last `maxAgeMs`. */
  async auditFailures(maxAgeMs: number): Promise<AuditFailure[]> {
    const entries = Object.values(await this.redis.hgetall(`${this.prefix}:audit-failures`)).map((text) => JSON.parse(text) as AuditFailure);
    const oldest = Date.now() - maxAgeMs;
    return entries.filter((entry) => Date.parse(entry.seenAt) >= oldest);
  }

  /** Stores a finding's outcome, keeping the newest `keep` of them. */
  async saveFinding(finding: FindingResult, keep: number): Promise<void> {
    const key = `${this.prefix}:findings`;
    await this.redis.lpush(key, JSON.stringify(finding));
    await this.redis.ltrim(key, 0, keep - 1);
  }

  async listFindings(limit: number): Promise<FindingResult[]> {
    const items = await this.redis.lrange(`${this.prefix}:findings`, 0, limit - 1);
    return items.map((item) => JSON.parse(item) as FindingResult);
  }

  ledger(environment: string, credentialId: string): CredentialLedger {
    const key = this.credentialKey(environment, credentialId);
    const redis = this.redis;
    return {
      async known(): Promise<KnownKeys> {
        const [current, unpromoted] = await redis.hmget(key, 'current', 'unpromoted');
        return { currentKeyId: current ?? null, unpromotedKeyIds: unpromoted === null || unpromoted === undefined ? [] : (JSON.parse(unpromoted) as string[]) };
      },
      async markUnpromoted(keyId: string): Promise<void> {
        await updateList(redis, key, (ids) => (ids.includes(keyId) ? ids : [...ids, keyId]));
      },
      async forget(keyId: string): Promise<void> {
        await updateList(redis, key, (ids) => ids.filter((id) => id !== keyId));
      },
      async markCurrent(keyId: string): Promise<void> {
        await updateList(redis, key, (ids) => ids.filter((id) => id !== keyId));
        await redis.hset(key, 'current', keyId);
      },
    };
  }
}

/** A process that could not write the audit trail: which one, why, and since when. */
export interface AuditFailure {
  processId: string;
  reason: string;
  since: string;
  seenAt: string;
}

/** Rewrites the `unpromoted` list of a ledger hash; one rotation per credential means no concurrent writer. */
async function updateList(redis: Redis, key: string, change: (ids: string[]) => string[]): Promise<void> {
  const text = await redis.hget(key, 'unpromoted');
  const ids = text === null ? [] : (JSON.parse(text) as string[]);
  await redis.hset(key, 'unpromoted', JSON.stringify(change(ids)));
}
