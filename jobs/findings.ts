import { randomUUID } from 'node:crypto';
import { Job } from 'bullmq';
import { RekeyError } from '../src/errors.js';
import type { SecretValue } from '../src/secret.js';
import type { IndexEntry } from './fingerprints.js';
import type { Runtime } from './runtime.js';
import { submitRotation } from './submit.js';

/** A leak report from a scanner, reduced to what matching needs. */
export interface Finding {
  /** `github`, `gitguardian` or `trufflehog`. */
  source: string;
  /** The leak's location, for people: a repository and alert number, a file. */
  reference: string;
  /** The time the scanner saw the leak (ISO 8601), or the time of receipt when the report has none. */
  observedAt: string;
  /** Reported values and identifiers: each is looked up in the fingerprint index. */
  candidates: SecretValue[];
  /** The reason the report could not be resolved to values (an alert rekey could not fetch), if so. */
  unresolved?: string;
}

export type FindingStatus =
  | 'unmatched' | 'unresolved' | 'rotation-started' | 'joined' | 'follow-up-queued' | 'already-rotated' | 'revoke-expedited' | 'not-in-inventory';

/** The outcome of a finding. It names the credential and key id, never the value. */
export interface FindingResult {
  findingId: string;
  source: string;
  reference: string;
  matched: boolean;
  status: FindingStatus;
  environment: string | null;
  credentialId: string | null;
  keyId: string | null;
  runId: string | null;
  /** The reason an unresolved finding could not be matched, and what to do. */
  note: string | null;
  receivedAt: string;
}

/** How many finding records rekey keeps for GET /v1/findings. */
const KEPT_FINDINGS = 10_000;

async function matchCandidates(runtime: Runtime, candidates: readonly SecretValue[]): Promise<IndexEntry | null> {
  for (const candidate of candidates) {
    const entry = await runtime.fingerprints.lookup(candidate);
    if (entry !== null) return entry;
  }
  return null;
}

/**
 * Matches a finding to a credential and acts on it. A leak of the current version starts an
 * incident rotation, or joins the one in progress. A leak of a replaced version is recorded as
 * already rotated, and a value rekey does not know as unmatched. GET /v1/findings shows each.
 */
export async function handleFinding(runtime: Runtime, finding: Finding, actor: string): Promise<FindingResult> {
  const entry = await matchCandidates(runtime, finding.candidates);
  const result: FindingResult = {
    findingId: randomUUID(),
    source: finding.source,
    reference: finding.reference,
    matched: entry !== null,
    status: finding.unresolved === undefined ? 'unmatched' : 'unresolved',
    environment: entry?.environment ?? null,
    credentialId: entry?.credentialId ?? null,
    keyId: entry?.keyId ?? null,
    runId: null,
    note: finding.unresolved ?? null,
    receivedAt: new Date().toISOString(),
  };

  if (entry !== null) Object.assign(result, await actOnMatch(runtime, finding, entry, actor));
  await runtime.records.saveFinding(result, KEPT_FINDINGS);
  const level = result.status === 'unresolved' ? 'warn' : 'info';
  runtime.logger[level]({ findingId: result.findingId, source: result.source, status: result.status, environment: result.environment, credentialId: result.credentialId, keyId: result.keyId, runId: result.runId, note: result.note }, 'finding recorded');
  return result;
}

async function actOnMatch(runtime: Runtime, finding: Finding, entry: IndexEntry, actor: string): Promise<Pick<FindingResult, 'status' | 'runId'>> {
  const environment = runtime.inventory.environments.get(entry.environment);
  if (environment?.credentials.some((credential) => credential.id === entry.credentialId) !== true) {
    return { status: 'not-in-inventory', runId: null };
  }

  // A key reported as leaked gets no grace period: a rotation that later schedules its revoke
  // checks this mark and revokes at once.
  await runtime.records.markLeaked(entry.environment, entry.credentialId, entry.keyId);

  const known = await runtime.records.ledger(entry.environment, entry.credentialId).known();
  const active = await runtime.records.activeRotation(entry.environment, entry.credentialId);
  if (active !== null) {
    // A leak of the replacement the running rotation created makes that rotation start another
    // one when it ends, through the leaked mark above. A leak of the key it replaces joins it.
    const leakedReplacement = known.unpromotedKeyIds.includes(entry.keyId);
    return { status: leakedReplacement ? 'follow-up-queued' : 'joined', runId: active.runId };
  }

  // The leaked version is current when rekey promoted it last, or when rekey never rotated the
  // credential and saw the key id as the one in use.
  const current = entry.keyId === known.currentKeyId || (known.currentKeyId === null && entry.field === null);
  let unrevoked = false;
  if (!current) {
    // A scheduled rotation replaced the key but left it working for its grace period: end that now.
    const revokeJobId = await runtime.records.pendingRevoke(entry.environment, entry.credentialId, entry.keyId);
    const revokeJob = revokeJobId === null ? undefined : await Job.fromId(runtime.queue, revokeJobId);
    const revokeState = revokeJob === undefined ? null : await revokeJob.getState();
    if (revokeJob !== undefined && revokeState === 'delayed') {
      await revokeJob.promote();
      return { status: 'revoke-expedited', runId: (revokeJob.data as { runId: string }).runId };
    }
    // The key was replaced but its revoke never finished (it failed for good, or an admin
    // force-closed the rotation), so it may still work: an incident rotation revokes it with
    // the principal's other keys.
    const last = await runtime.records.lastRotation(entry.environment, entry.credentialId);
    unrevoked = await runtime.records.isUnrevoked(entry.environment, entry.credentialId, entry.keyId) || (last?.oldKeyId === entry.keyId
      && (last.outcome === 'revocation-pending' || last.outcome === 'force-closed' || revokeState === 'failed' || (revokeJobId !== null && revokeJob === undefined)));
    if (!unrevoked) return { status: 'already-rotated', runId: null };
  }

  const submitted = await submitRotation(runtime, {
    environment: entry.environment,
    mode: 'incident',
    reason: `${finding.source} reported a leak of key ${entry.keyId} (${finding.reference})${unrevoked ? ', a replaced key whose revoke did not finish' : ''}`,
    credentialIds: [entry.credentialId],
    dryRun: false,
    actor,
    trigger: `webhook:${finding.source}`,
  });
  const joined = submitted.credentials[0]?.joined === true;
  return { status: joined ? 'joined' : 'rotation-started', runId: submitted.runId };
}

/** How long a delivery id is remembered: 7 days, an estimate beyond any sender's retry window (GitHub does not redeliver by itself). */
const DELIVERY_TTL_SECONDS = 7 * 24 * 3600;
/** How long a repeated delivery waits for the first one's result before its reply asks the sender to retry. */
const DUPLICATE_WAIT_MS = 10_000;
const PENDING = 'pending';

/**
 * Runs `work` once per delivery id. The first request claims the id atomically and stores its
 * result. A repeat, even one that arrives while the first is still working, waits for that
 * result and returns it, so every reply names the same run.
 */
export async function oncePerDelivery<T>(
  runtime: Runtime,
  source: string,
  deliveryId: string,
  work: () => Promise<T>,
  ttlSeconds: number = DELIVERY_TTL_SECONDS,
): Promise<{ result: T; duplicate: boolean }> {
  const key = `${runtime.config.redisPrefix}:delivery:${source}:${deliveryId}`;
  const claimed = await runtime.redis.set(key, PENDING, 'EX', ttlSeconds, 'NX');
  if (claimed === 'OK') {
    let result: T;
    try {
      result = await work();
    } catch (error) {
      // Nothing was done for this delivery: forget it so the sender's retry is processed.
      await runtime.redis.del(key);
      throw error;
    }
    await runtime.redis.set(key, JSON.stringify(result), 'EX', ttlSeconds);
    return { result, duplicate: false };
  }

  const deadline = Date.now() + DUPLICATE_WAIT_MS;
  for (;;) {
    const stored = await runtime.redis.get(key);
    if (stored !== null && stored !== PENDING) return { result: JSON.parse(stored) as T, duplicate: true };
    if (stored === null) return oncePerDelivery(runtime, source, deliveryId, work, ttlSeconds);
    if (Date.now() > deadline) {
      throw new RekeyError('UNAVAILABLE', `delivery ${deliveryId} from ${source} is still being processed; retry later`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
