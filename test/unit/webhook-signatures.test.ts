import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  signGitGuardian,
  signGithub,
  signHmacSha256,
  verifyGitGuardianSignature,
  verifyGithubSignature,
  verifyHmacSha256Header,
} from '../../src/webhooks/signatures.js';

/** GitHub's published example, from "Validating webhook deliveries". */
const GITHUB_SECRET = "It's a Secret to Everybody";
const GITHUB_BODY = Buffer.from('Hello, World!');
const GITHUB_SIGNATURE = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

/** GitGuardian's published example, from the "Custom webhook" page: token "foo", timestamp "0", body "bar". */
const GITGUARDIAN_TOKEN = 'foo';
const GITGUARDIAN_BODY = Buffer.from('bar');
const GITGUARDIAN_SIGNATURE = 'sha256=172fe3d694b734aa53dc892fd3b8d62163fc240064de570ba006900bb54a0fc2';

const HEX_DIGEST = GITHUB_SIGNATURE.slice('sha256='.length);

/** Header values that are not `sha256=<64 lower-case hex digits>`, each of which must fail without throwing. */
const MALFORMED_HEADERS: Array<{ name: string; header: string | undefined }> = [
  { name: 'missing header', header: undefined },
  { name: 'empty header', header: '' },
  { name: 'prefix only', header: 'sha256=' },
  { name: 'bare hex digest', header: HEX_DIGEST },
  { name: 'upper-case prefix', header: `SHA256=${HEX_DIGEST}` },
  { name: 'sha1 prefix', header: `sha1=${HEX_DIGEST}` },
  { name: 'upper-case hex', header: `sha256=${HEX_DIGEST.toUpperCase()}` },
  { name: 'trailing space', header: `${GITHUB_SIGNATURE} ` },
  { name: 'leading space', header: ` ${GITHUB_SIGNATURE}` },
  { name: 'truncated digest', header: GITHUB_SIGNATURE.slice(0, -2) },
  { name: 'extended digest', header: `${GITHUB_SIGNATURE}00` },
  { name: 'non-hex digits', header: `sha256=${'z'.repeat(64)}` },
  { name: 'base64 digest', header: `sha256=${Buffer.from(HEX_DIGEST, 'hex').toString('base64')}` },
  { name: 'two signatures', header: `${GITHUB_SIGNATURE},${GITHUB_SIGNATURE}` },
];

describe('verifyGithubSignature', () => {
  it('matches GitHub published test vector', () => {
    expect(signGithub(GITHUB_BODY, GITHUB_SECRET)).toBe(GITHUB_SIGNATURE);
    expect(verifyGithubSignature(GITHUB_BODY, GITHUB_SIGNATURE, GITHUB_SECRET)).toBe(true);
  });

  it('accepts a signature of a JSON body', () => {
    const body = Buffer.from('{"action":"created","alert":{"number":42}}');
    expect(verifyGithubSignature(body, signGithub(body, 'webhook-secret'), 'webhook-secret')).toBe(true);
  });

  it('rejects a signature of another body', () => {
    expect(verifyGithubSignature(Buffer.from('Hello, World?'), GITHUB_SIGNATURE, GITHUB_SECRET)).toBe(false);
  });

  it('rejects a signature made with another secret', () => {
    expect(verifyGithubSignature(GITHUB_BODY, GITHUB_SIGNATURE, "It's a Secret to Somebody")).toBe(false);
  });

  it('rejects a digest with one flipped bit', () => {
    const flipped = `sha256=${HEX_DIGEST.slice(0, -1)}${HEX_DIGEST.endsWith('7') ? '6' : '7'}`;
    expect(verifyGithubSignature(GITHUB_BODY, flipped, GITHUB_SECRET)).toBe(false);
  });

  it('rejects every signature when the secret is empty', () => {
    expect(verifyGithubSignature(GITHUB_BODY, signGithub(GITHUB_BODY, ''), '')).toBe(false);
  });

  describe('when the header is malformed', () => {
    for (const { name, header } of MALFORMED_HEADERS) {
      it(`returns false for ${name}`, () => {
        expect(verifyGithubSignature(GITHUB_BODY, header, GITHUB_SECRET)).toBe(false);
      });
    }
  });
});

describe('verifyHmacSha256Header', () => {
  const secret = 'forwarder-shared-secret';
  const body = Buffer.from('{"DetectorName":"AWS","Verified":true}\n');

  it('accepts the signature signHmacSha256 computes', () => {
    expect(verifyHmacSha256Header(body, signHmacSha256(body, secret), secret)).toBe(true);
  });

  it('computes HMAC-SHA256 of the raw body as hex', () => {
    const expected = createHmac('sha256', secret).update(body).digest('hex');
    expect(signHmacSha256(body, secret)).toBe(`sha256=${expected}`);
  });

  it('uses the same format as GitHub', () => {
    expect(signHmacSha256(GITHUB_BODY, GITHUB_SECRET)).toBe(GITHUB_SIGNATURE);
    expect(verifyHmacSha256Header(GITHUB_BODY, GITHUB_SIGNATURE, GITHUB_SECRET)).toBe(true);
  });

  it('rejects a signature made with another secret', () => {
    expect(verifyHmacSha256Header(body, signHmacSha256(body, 'other-secret'), secret)).toBe(false);
  });

  it('rejects a body changed after signing', () => {
    const signature = signHmacSha256(body, secret);
    expect(verifyHmacSha256Header(Buffer.from('{"DetectorName":"AWS","Verified":false}\n'), signature, secret)).toBe(false);
  });

  it('rejects every signature when the secret is empty', () => {
    expect(verifyHmacSha256Header(body, signHmacSha256(body, ''), '')).toBe(false);
  });

  describe('when the header is malformed', () => {
    for (const { name, header } of MALFORMED_HEADERS) {
      it(`returns false for ${name}`, () => {
        expect(verifyHmacSha256Header(GITHUB_BODY, header, GITHUB_SECRET)).toBe(false);
      });
    }
  });
});

describe('verifyGitGuardianSignature', () => {
  const token = 'gitguardian-signature-token';
  const body = Buffer.from('{"action":"incident_triggered","incident":{"id":8213944}}');
  const now = 1_714_564_800;
  const maxSkew = 5;

  function verifyAt(timestamp: string, signature: string | undefined, nowSeconds = now) {
    return verifyGitGuardianSignature(body, { signature, timestamp }, token, nowSeconds, maxSkew);
  }

  it('matches GitGuardian published test vector', () => {
    expect(signGitGuardian(GITGUARDIAN_BODY, GITGUARDIAN_TOKEN, '0')).toBe(GITGUARDIAN_SIGNATURE);
    const result = verifyGitGuardianSignature(GITGUARDIAN_BODY, { signature: GITGUARDIAN_SIGNATURE, timestamp: '0' }, GITGUARDIAN_TOKEN, 0, maxSkew);
    expect(result).toEqual({ ok: true });
  });

  it('keys the HMAC with the timestamp followed by the token', () => {
    const expected = createHmac('sha256', `${now}${token}`).update(body).digest('hex');
    expect(signGitGuardian(body, token, now)).toBe(`sha256=${expected}`);
  });

  it('accepts a fresh signed delivery', () => {
    expect(verifyAt(String(now), signGitGuardian(body, token, now))).toEqual({ ok: true });
  });

  it('accepts a timestamp with a fraction of a second', () => {
    const timestamp = `${now}.930965`;
    expect(verifyAt(timestamp, signGitGuardian(body, token, timestamp))).toEqual({ ok: true });
  });

  it('accepts a timestamp exactly at the skew limit', () => {
    const stale = String(now - maxSkew);
    expect(verifyAt(stale, signGitGuardian(body, token, stale))).toEqual({ ok: true });
    const future = String(now + maxSkew);
    expect(verifyAt(future, signGitGuardian(body, token, future))).toEqual({ ok: true });
  });

  it('rejects a stale timestamp', () => {
    const stale = String(now - maxSkew - 1);
    expect(verifyAt(stale, signGitGuardian(body, token, stale))).toEqual({ ok: false, reason: 'timestamp outside the allowed skew' });
  });

  it('rejects a timestamp in the future', () => {
    const future = String(now + maxSkew + 1);
    expect(verifyAt(future, signGitGuardian(body, token, future))).toEqual({ ok: false, reason: 'timestamp outside the allowed skew' });
  });

  it('rejects every delivery when the clock is NaN', () => {
    expect(verifyAt(String(now), signGitGuardian(body, token, now), Number.NaN)).toEqual({ ok: false, reason: 'timestamp outside the allowed skew' });
  });

  it('rejects a signature made with another token', () => {
    expect(verifyAt(String(now), signGitGuardian(body, 'another-token', now))).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  it('rejects a body changed after signing', () => {
    const signature = signGitGuardian(body, token, now);
    const result = verifyGitGuardianSignature(Buffer.from('{"action":"incident_resolved"}'), { signature, timestamp: String(now) }, token, now, maxSkew);
    expect(result).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  it('rejects a timestamp changed after signing', () => {
    const signature = signGitGuardian(body, token, now - 1);
    expect(verifyAt(String(now), signature)).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  it('reports a bad signature before a stale timestamp', () => {
    const stale = String(now - 3600);
    expect(verifyAt(stale, signGitGuardian(body, 'another-token', stale))).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  it('rejects every signature when the token is empty', () => {
    const result = verifyGitGuardianSignature(body, { signature: signGitGuardian(body, '', now), timestamp: String(now) }, '', now, maxSkew);
    expect(result).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  describe('when a header is missing or malformed', () => {
    const signature = signGitGuardian(body, token, now);
    const cases: Array<{ name: string; headers: { signature?: string; timestamp?: string }; reason: string }> = [
      { name: 'missing timestamp', headers: { signature }, reason: 'missing Timestamp header' },
      { name: 'empty timestamp', headers: { signature, timestamp: '' }, reason: 'missing Timestamp header' },
      { name: 'missing signature', headers: { timestamp: String(now) }, reason: 'missing Gitguardian-Signature header' },
      { name: 'empty signature', headers: { signature: '', timestamp: String(now) }, reason: 'missing Gitguardian-Signature header' },
      { name: 'date as timestamp', headers: { signature, timestamp: '2024-05-01T12:00:00Z' }, reason: 'invalid Timestamp header' },
      { name: 'negative timestamp', headers: { signature, timestamp: `-${now}` }, reason: 'invalid Timestamp header' },
      { name: 'signature without prefix', headers: { signature: signature.slice('sha256='.length), timestamp: String(now) }, reason: 'malformed Gitguardian-Signature header' },
      { name: 'upper-case hex signature', headers: { signature: signature.toUpperCase().replace('SHA256=', 'sha256='), timestamp: String(now) }, reason: 'malformed Gitguardian-Signature header' },
      { name: 'truncated signature', headers: { signature: signature.slice(0, -1), timestamp: String(now) }, reason: 'malformed Gitguardian-Signature header' },
    ];

    for (const testCase of cases) {
      it(`returns "${testCase.reason}" for ${testCase.name}`, () => {
        expect(verifyGitGuardianSignature(body, testCase.headers, token, now, maxSkew)).toEqual({ ok: false, reason: testCase.reason });
      });
    }
  });
});
