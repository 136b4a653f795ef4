import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signature checks for the scanner webhooks rekey receives. Each check runs over the raw request
 * body, before any JSON parsing, and compares digests in constant time. A missing or malformed
 * header fails the check and never throws.
 *
 * Header formats:
 *
 * - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(webhook secret, raw body)>`, as
 *   documented in GitHub's "Validating webhook deliveries".
 * - GitGuardian custom webhooks: `Gitguardian-Signature: sha256=<hex HMAC-SHA256(key, raw body)>`
 *   where the key is the `Timestamp` header value followed by the signature token. The older
 *   `X-GitGuardian-Signature` header is deprecated. Source: docs.gitguardian.com, "Custom
 *   webhook", section "How to verify the payload signature".
 * - TruffleHog: its CLI signs nothing, so rekey defines `X-Rekey-Signature-256` in GitHub's
 *   format (`sha256=<hex HMAC-SHA256(shared secret, raw body)>`) for the forwarder that posts
 *   `trufflehog --json` output to rekey. TruffleHog Enterprise's webhook notifier is not
 *   supported: it sends another payload and signs it in `X-Hub-Signature`, by default with a
 *   plain SHA-256 of token and body (docs.trufflesecurity.com, "Webhook").
 */

/** Header names, lower-cased as Node.js delivers them. */
export const GITHUB_SIGNATURE_HEADER = 'x-hub-signature-256';
export const GITHUB_EVENT_HEADER = 'x-github-event';
export const GITGUARDIAN_SIGNATURE_HEADER = 'gitguardian-signature';
export const GITGUARDIAN_TIMESTAMP_HEADER = 'timestamp';
export const REKEY_SIGNATURE_HEADER = 'x-rekey-signature-256';

const SIGNATURE_PREFIX = 'sha256=';

/** `sha256=` followed by the 64 lower-case hex digits of a SHA-256 digest, as the senders format it. */
const SIGNATURE_PATTERN = /^sha256=[0-9a-f]{64}$/;

/**
 * Unix time in seconds, with an optional fraction.
 * NOTE: GitGuardian's docs do not state the Timestamp format. Their test vector uses "0", so
 * rekey expects Unix seconds; a delivery in another format is rejected as "invalid Timestamp header".
 */
const TIMESTAMP_PATTERN = /^\d{1,12}(\.\d{1,9})?$/;

/** The reason for rejecting a GitGuardian delivery: a fixed phrase, safe to return to the client. */
export type GitGuardianRejection =
  | 'missing Timestamp header'
  | 'missing Gitguardian-Signature header'
  | 'invalid Timestamp header'
  | 'malformed Gitguardian-Signature header'
  | 'signature mismatch'
  | 'timestamp outside the allowed skew';

export type GitGuardianVerification = { ok: true } | { ok: false; reason: GitGuardianRejection };

function hmacSha256(key: string, rawBody: Buffer): Buffer {
  return createHmac('sha256', key).update(rawBody).digest();
}

/** Returns the digest a `sha256=<hex>` header carries, or undefined if the header is missing or malformed. */
function parseSignatureHeader(header: string | undefined): Buffer | undefined {
  if (header === undefined || !SIGNATURE_PATTERN.test(header)) return undefined;
  return Buffer.from(header.slice(SIGNATURE_PREFIX.length), 'hex');
}

/** Checks a `sha256=<hex>` header against the HMAC-SHA256 of the body under `key`. Both digests are 32 bytes, as timingSafeEqual requires. */
function verifySha256Header(rawBody: Buffer, header: string | undefined, key: string): boolean {
  const received = parseSignatureHeader(header);
  if (received === undefined) return false;
  return timingSafeEqual(hmacSha256(key, rawBody), received);
}

function formatSignature(key: string, rawBody: Buffer): string {
  return `${SIGNATURE_PREFIX}${hmacSha256(key, rawBody).toString('hex')}`;
}

/**
 * Verifies GitHub's `X-Hub-Signature-256` header over the raw body with the webhook secret. An
 * empty secret never verifies, so an unset secret cannot accept a delivery anyone could sign.
 */
export function verifyGithubSignature(rawBody: Buffer, header: string | undefined, secret: string): boolean {
  return secret !== '' && verifySha256Header(rawBody, header, secret);
}

/**
 * Verifies rekey's `X-Rekey-Signature-256` header, sent by the forwarder of TruffleHog findings.
 * An empty secret never verifies.
 */
export function verifyHmacSha256Header(rawBody: Buffer, header: string | undefined, secret: string): boolean {
  return secret !== '' && verifySha256Header(rawBody, header, secret);
}

/**
 * Verifies a GitGuardian custom webhook delivery: the `Gitguardian-Signature` header over the raw
 * body, keyed by the `Timestamp` header value followed by the signature token, then the timestamp
 * against `nowSeconds`. GitGuardian's docs require the `sha256=` prefix, so a bare hex digest is
 * rejected, and an empty token never verifies. The signature is checked before the timestamp, so
 * "timestamp outside the allowed skew" is returned only for a delivery that GitGuardian really
 * signed: a replay, or a clock that is off.
 */
export function verifyGitGuardianSignature(
  rawBody: Buffer,
  headers: { signature?: string; timestamp?: string },
  token: string,
  nowSeconds: number,
  maxSkewSeconds: number,
): GitGuardianVerification {
  const { signature, timestamp } = headers;
  if (timestamp === undefined || timestamp === '') return { ok: false, reason: 'missing Timestamp header' };
  if (signature === undefined || signature === '') return { ok: false, reason: 'missing Gitguardian-Signature header' };
  if (!TIMESTAMP_PATTERN.test(timestamp)) return { ok: false, reason: 'invalid Timestamp header' };
  if (!SIGNATURE_PATTERN.test(signature)) return { ok: false, reason: 'malformed Gitguardian-Signature header' };

  if (token === '' || !verifySha256Header(rawBody, signature, `${timestamp}${token}`)) {
    return { ok: false, reason: 'signature mismatch' };
  }

  // Written as "not within" so that a NaN clock or limit rejects the delivery instead of accepting it.
  const skewSeconds = Math.abs(nowSeconds - Number(timestamp));
  if (!(skewSeconds <= maxSkewSeconds)) return { ok: false, reason: 'timestamp outside the allowed skew' };
  return { ok: true };
}

/** Computes the `X-Hub-Signature-256` value GitHub would send for this body. */
export function signGithub(rawBody: Buffer, secret: string): string {
  return formatSignature(secret, rawBody);
}

/** Computes the `Gitguardian-Signature` value GitGuardian would send with this `Timestamp` header. */
export function signGitGuardian(rawBody: Buffer, token: string, timestamp: string | number): string {
  return formatSignature(`${timestamp}${token}`, rawBody);
}

/** Computes the `X-Rekey-Signature-256` value a TruffleHog forwarder sends for this body. */
export function signHmacSha256(rawBody: Buffer, secret: string): string {
  return formatSignature(secret, rawBody);
}
