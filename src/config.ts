import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import type { Env } from './contracts.js';

/** Process settings, all from environment variables. Provider admin credentials are read by each provider. */
export interface RekeyConfig {
  redisUrl: string;
  inventoryPath: string;
  /** The bootstrap API token; the API refuses to start without it. */
  apiToken: string | undefined;
  host: string;
  port: number;
  queueName: string;
  /** Namespace of every Redis key rekey and BullMQ write. */
  redisPrefix: string;
  workerConcurrency: number;
  /**
   * How long a worker's lock on a job lasts without renewal, in milliseconds. A worker that dies
   * loses its jobs to another worker after about this long plus the stalled-check interval.
   */
  workerLockMs: number;
  /** How often a worker looks for jobs whose worker died, in milliseconds. */
  workerStalledIntervalMs: number;
  /** Key of the HMAC fingerprints that identify values in the audit trail. */
  fingerprintKeyFile: string;
  fingerprintKeyText: string | undefined;
  logLevel: string;
  /** Requests a minute one token (or, without a token, one source address) may send. */
  rateLimitPerMinute: number;
  /** Failed authentications a minute one source address may make before it gets 429. */
  authFailuresPerMinute: number;
  /**
   * Fastify's trustProxy: which proxies' X-Forwarded-For to believe when rekey works out a
   * request's source address. False (the default) uses the connection's address.
   */
  trustProxy: boolean | number | string[];
  /** File of API token hashes, written by `rekey token create`. */
  tokensFile: string;
  webhooks: WebhookConfig;
}

/** Shared secrets of the scanner webhooks. A webhook whose secret is unset returns 503. */
export interface WebhookConfig {
  githubSecret: string | undefined;
  /** REST API root used to fetch an alert's secret; GitHub Enterprise Server uses https://HOST/api/v3. */
  githubApiUrl: string;
  githubToken: string | undefined;
  gitguardianToken: string | undefined;
  /** Largest accepted difference between GitGuardian's Timestamp header and this host's clock. */
  gitguardianMaxSkewSeconds: number;
  trufflehogSecret: string | undefined;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name}="${text}" is invalid: expected an integer from ${min} to ${max}`);
  }
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Reads REKEY_TRUST_PROXY: unset or `false`, `true` (every proxy: only when nothing reaches rekey
 * but through the proxies), a number of hops, or a comma-separated list of proxy addresses or CIDRs.
 */
function readTrustProxy(text: string | undefined): boolean | number | string[] {
  const value = text?.trim() ?? '';
  if (value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^[0-9]+$/.test(value)) return Number(value);
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (entries.some((entry) => !/^[0-9a-fA-F.:]+(\/[0-9]{1,3})?$/.test(entry))) {
    throw new ConfigError(`REKEY_TRUST_PROXY="${value}" is invalid: expected false, true, a number of hops, or proxy addresses and CIDRs separated by commas`);
  }
  return entries;
}

export function readConfig(env: Env): RekeyConfig {
  return {
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    inventoryPath: env.REKEY_INVENTORY ?? 'config/inventory.yaml',
    apiToken: env.REKEY_API_TOKEN === '' ? undefined : env.REKEY_API_TOKEN,
    host: env.REKEY_HOST ?? '127.0.0.1',
    port: integer(env, 'REKEY_PORT', 8080, 0, 65535),
    queueName: env.REKEY_QUEUE ?? 'rotations',
    redisPrefix: env.REKEY_REDIS_PREFIX ?? 'rekey',
    workerConcurrency: integer(env, 'REKEY_WORKER_CONCURRENCY', 8, 1, 1000),
    workerLockMs: integer(env, 'REKEY_WORKER_LOCK_MS', 30_000, 1000, 600_000),
    workerStalledIntervalMs: integer(env, 'REKEY_WORKER_STALLED_INTERVAL_MS', 30_000, 500, 600_000),
    fingerprintKeyFile: env.REKEY_FINGERPRINT_KEY_FILE ?? '.rekey/fingerprint.key',
    fingerprintKeyText: env.REKEY_FINGERPRINT_KEY === '' ? undefined : env.REKEY_FINGERPRINT_KEY,
    logLevel: env.REKEY_LOG_LEVEL ?? 'info',
    tokensFile: env.REKEY_TOKENS_FILE ?? '.rekey/tokens.json',
    rateLimitPerMinute: integer(env, 'REKEY_RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    authFailuresPerMinute: integer(env, 'REKEY_AUTH_FAILURES_PER_MINUTE', 30, 1, 1_000_000),
    trustProxy: readTrustProxy(env.REKEY_TRUST_PROXY),
    webhooks: {
      githubSecret: nonEmpty(env.REKEY_GITHUB_WEBHOOK_SECRET),
      githubApiUrl: env.REKEY_GITHUB_API_URL ?? 'https://api.github.com',
      githubToken: nonEmpty(env.REKEY_GITHUB_TOKEN),
      gitguardianToken: nonEmpty(env.REKEY_GITGUARDIAN_WEBHOOK_TOKEN),
      gitguardianMaxSkewSeconds: integer(env, 'REKEY_GITGUARDIAN_MAX_SKEW_SECONDS', 60, 1, 3600),
      trufflehogSecret: nonEmpty(env.REKEY_TRUFFLEHOG_WEBHOOK_SECRET),
    },
  };
}

/** Decodes a 32-byte key given as 64 hex characters or as base64. */
export function decodeKey(text: string, name: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new ConfigError(`${name} must be 32 bytes, as 64 hex characters or base64; it decodes to ${key.length} bytes`);
  return key;
}

/**
 * Loads the fingerprint key from REKEY_FINGERPRINT_KEY, or from its key file, which is created
 * with mode 0600 on first use. Every process that shares an audit trail must use the same key,
 * or the same value gets different fingerprints.
 */
export function loadFingerprintKey(config: Pick<RekeyConfig, 'fingerprintKeyFile' | 'fingerprintKeyText'>): Buffer {
  if (config.fingerprintKeyText !== undefined) return decodeKey(config.fingerprintKeyText, 'REKEY_FINGERPRINT_KEY');

  const path = config.fingerprintKeyFile;
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(`fingerprint key file ${path} has mode ${mode.toString(8)}; run chmod 600 ${path}`);
  }
  return decodeKey(readFileSync(path, 'utf8'), path);
}
