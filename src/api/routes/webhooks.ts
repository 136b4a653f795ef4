import { createHmac } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { handleFinding, oncePerDelivery, type FindingResult } from '../../../jobs/findings.js';
import type { Runtime } from '../../../jobs/runtime.js';
import { RekeyError, summarizeError } from '../../errors.js';
import { SecretValue } from '../../secret.js';
import { fetchSecretScanningAlert } from '../../webhooks/github-client.js';
import { parseGitGuardianEvent, parseGithubSecretScanningEvent, parseTruffleHogFindings } from '../../webhooks/payloads.js';
import {
  GITGUARDIAN_SIGNATURE_HEADER, GITGUARDIAN_TIMESTAMP_HEADER, GITHUB_EVENT_HEADER, GITHUB_SIGNATURE_HEADER, REKEY_SIGNATURE_HEADER,
  verifyGitGuardianSignature, verifyGithubSignature, verifyHmacSha256Header,
} from '../../webhooks/signatures.js';
import { mayAccessEnvironment } from '../auth.js';
import { sendProblem } from '../problem.js';

/** Scanner deliveries are small; GitHub caps its own payloads at 25 MB, TruffleHog batches stay far below 1 MB. */
const WEBHOOK_BODY_LIMIT = 1024 * 1024;
/** GitHub expects a reply within 10 s, so fetching an alert gets at most half of that. */
const GITHUB_FETCH_TIMEOUT_MS = 5000;
/** Alert actions that report a secret that may still work. */
const GITHUB_TRIGGERING_ACTIONS = new Set(['created', 'reopened', 'publicly_leaked', 'validated']);

interface DeliveryReply {
  deliveryId: string;
  duplicate: boolean;
  results: FindingResult[];
}

/** Returns the raw body; a request without body or content type has none, which reads as empty. */
function rawBody(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function parseJson(body: Buffer, source: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    // The parser's message quotes part of the body, which may hold a secret.
    throw new RekeyError('INVALID_PARAMETERS', `${source} body is not valid JSON`);
  }
}

/**
 * Identifies a delivery by its body: an HMAC with the fingerprint key, because the body can
 * carry a secret, and a plain hash of it would let anyone who reads the id test guesses.
 */
function bodyDigest(runtime: Runtime, body: Buffer): string {
  return createHmac('sha256', runtime.fingerprintKey).update(body).digest('hex');
}

/**
 * Reads a GitHub delivery's JSON. A webhook configured with the form content type sends it as
 * the `payload` field of an urlencoded body; the signature still covers the raw body.
 */
function githubPayload(request: FastifyRequest, body: Buffer): unknown {
  if ((request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(body.toString('utf8')).get('payload');
    if (payload === null) throw new RekeyError('INVALID_PARAMETERS', 'GitHub delivery has no payload field');
    return parseJson(Buffer.from(payload, 'utf8'), 'GitHub delivery payload');
  }
  return parseJson(body, 'GitHub delivery');
}

function rejectSignature(request: FastifyRequest, reply: FastifyReply, source: string, detail: string): FastifyReply {
  request.log.warn({ source, reason: detail }, 'webhook signature rejected');
  return sendProblem(reply, 401, 'INVALID_SIGNATURE', detail);
}

/**
 * Expands a reported value into the strings worth looking up: the value itself and, for a key
 * pair reported as one string (TruffleHog's RawV2 of an AWS key is the key id followed by the
 * secret), its two parts.
 */
export function candidatesOf(values: ReadonlyArray<SecretValue | null>): SecretValue[] {
  const candidates: SecretValue[] = [];
  for (const value of values) {
    if (value === null) continue;
    candidates.push(value);
    const text = value.reveal();
    const awsPair = /^((?:AKIA|ASIA)[A-Z0-9]{16})[:\s]?(\S{40})$/.exec(text);
    if (awsPair !== null) candidates.push(SecretValue.fromString(awsPair[1]!), SecretValue.fromString(awsPair[2]!));
  }
  return candidates;
}

export function registerWebhookRoutes(app: FastifyInstance, runtime: Runtime): void {
  const config = runtime.config.webhooks;

  if (config.githubSecret !== undefined && config.githubToken === undefined) {
    runtime.logger.warn('REKEY_GITHUB_WEBHOOK_SECRET is set without REKEY_GITHUB_TOKEN: alerts without a secret in the payload (all of GitHub\'s) are recorded as unresolved');
  }

  const notConfigured = (reply: FastifyReply, variable: string): FastifyReply =>
    sendProblem(reply, 503, 'WEBHOOK_NOT_CONFIGURED', `this webhook is disabled: set ${variable} to the secret the sender signs with`);

  app.get<{ Querystring: { limit?: string } }>('/v1/findings', {
    config: { role: 'viewer' },
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^(1000|[1-9][0-9]{0,2})$' } } } },
  }, async (request) => {
    const findings = await runtime.records.listFindings(Number(request.query.limit ?? '100'));
    // A scoped token reads the findings of its environments. Unmatched findings name no
    // environment, so only an unscoped token reads them.
    return { findings: findings.filter((finding) => finding.environment === null ? request.principal?.environments === null : mayAccessEnvironment(request.principal, finding.environment)) };
  });

  void app.register(async (scope) => {
    // Signatures are computed over the exact bytes received, so these routes keep the raw body.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    scope.post('/v1/webhooks/github', { bodyLimit: WEBHOOK_BODY_LIMIT, config: { auth: false } }, async (request, reply) => {
      if (config.githubSecret === undefined) return notConfigured(reply, 'REKEY_GITHUB_WEBHOOK_SECRET');
      const body = rawBody(request);
      if (!verifyGithubSignature(body, header(request, GITHUB_SIGNATURE_HEADER), config.githubSecret)) {
        return rejectSignature(request, reply, 'github', 'X-Hub-Signature-256 is missing or does not match the body; it must be sha256= and 64 lower-case hex digits');
      }
      const deliveryId = header(request, 'x-github-delivery');
      const eventName = header(request, GITHUB_EVENT_HEADER);
      if (deliveryId === undefined || eventName === undefined) {
        return sendProblem(reply, 400, 'INVALID_REQUEST', 'X-GitHub-Delivery and X-GitHub-Event headers are required');
      }
      if (eventName !== 'ping' && eventName !== 'secret_scanning_alert') {
        return reply.code(202).send({ deliveryId, ignored: `event ${eventName.slice(0, 64)} is not handled` });
      }

      const event = parseGithubSecretScanningEvent(eventName, githubPayload(request, body));
      if (event.event === 'ping') return reply.code(200).send({ deliveryId, ok: true });
      if (!GITHUB_TRIGGERING_ACTIONS.has(event.action)) {
        return reply.code(202).send({ deliveryId, ignored: `action ${event.action.slice(0, 64)} does not report a usable secret` });
      }

      const reference = `${event.owner}/${event.repo} secret scanning alert #${event.alertNumber}`;
      // Deduplicated on the delivery id, and on the signed body too: the id header is not signed,
      // so a captured delivery replayed under a new id must not be processed again.
      const outcome = await oncePerDelivery(runtime, 'github', deliveryId, async (): Promise<FindingResult[]> => (await oncePerDelivery(runtime, 'github-body', bodyDigest(runtime, body), async (): Promise<FindingResult[]> => {
        let secret = event.secret;
        if (secret === null && config.githubToken === undefined) {
          // Recorded so the alert is not lost: GitHub does not redeliver by itself.
          const unresolved = 'the alert carries no secret and REKEY_GITHUB_TOKEN is not set, so rekey could not fetch it; set the token and redeliver the event from GitHub';
          return [await handleFinding(runtime, { source: 'github', reference, observedAt: event.createdAt, candidates: [], unresolved }, 'github')];
        }
        if (secret === null) {
          try {
            const alert = await fetchSecretScanningAlert({
              baseUrl: config.githubApiUrl, token: config.githubToken!, owner: event.owner, repo: event.repo,
              alertNumber: event.alertNumber, timeoutMs: GITHUB_FETCH_TIMEOUT_MS,
            });
            secret = alert.secret;
          } catch (error) {
            // Recorded, then rethrown so the reply is an error and a redelivery from GitHub tries again.
            const unresolved = `fetching the alert failed: ${summarizeError(error).code}: ${summarizeError(error).message}`;
            await handleFinding(runtime, { source: 'github', reference, observedAt: event.createdAt, candidates: [], unresolved }, 'github');
            throw error;
          }
        }
        return [await handleFinding(runtime, { source: 'github', reference, observedAt: event.createdAt, candidates: candidatesOf([secret]) }, 'github')];
      })).result);
      return reply.code(202).send({ deliveryId, duplicate: outcome.duplicate, results: outcome.result } satisfies DeliveryReply);
    });

    scope.post('/v1/webhooks/gitguardian', { bodyLimit: WEBHOOK_BODY_LIMIT, config: { auth: false } }, async (request, reply) => {
      if (config.gitguardianToken === undefined) return notConfigured(reply, 'REKEY_GITGUARDIAN_WEBHOOK_TOKEN');
      const body = rawBody(request);
      const verification = verifyGitGuardianSignature(body, {
        signature: header(request, GITGUARDIAN_SIGNATURE_HEADER),
        timestamp: header(request, GITGUARDIAN_TIMESTAMP_HEADER),
      }, config.gitguardianToken, Date.now() / 1000, config.gitguardianMaxSkewSeconds);
      if (!verification.ok) return rejectSignature(request, reply, 'gitguardian', `GitGuardian signature rejected: ${verification.reason}`);

      const event = parseGitGuardianEvent(parseJson(body, 'GitGuardian delivery'));
      // GitGuardian sends no delivery id; the signed body, timestamp included, identifies a delivery.
      const deliveryId = bodyDigest(runtime, body);
      const outcome = await oncePerDelivery(runtime, 'gitguardian', deliveryId, async (): Promise<FindingResult[]> => {
        const reference = event.kind === 'incident' ? `GitGuardian incident ${event.incidentId} (${event.action})` : 'GitGuardian test message';
        const observedAt = event.kind === 'incident' ? event.occurredAt : new Date().toISOString();
        return [await handleFinding(runtime, { source: 'gitguardian', reference, observedAt, candidates: candidatesOf(event.secrets) }, 'gitguardian')];
      });
      return reply.code(202).send({ deliveryId, duplicate: outcome.duplicate, results: outcome.result } satisfies DeliveryReply);
    });

    scope.post('/v1/webhooks/trufflehog', { bodyLimit: WEBHOOK_BODY_LIMIT, config: { auth: false } }, async (request, reply) => {
      if (config.trufflehogSecret === undefined) return notConfigured(reply, 'REKEY_TRUFFLEHOG_WEBHOOK_SECRET');
      const body = rawBody(request);
      if (!verifyHmacSha256Header(body, header(request, REKEY_SIGNATURE_HEADER), config.trufflehogSecret)) {
        return rejectSignature(request, reply, 'trufflehog', 'X-Rekey-Signature-256 is missing or does not match the body; it must be sha256= and 64 lower-case hex digits');
      }

      const findings = parseTruffleHogFindings(body.toString('utf8'));
      const deliveryId = bodyDigest(runtime, body);
      const outcome = await oncePerDelivery(runtime, 'trufflehog', deliveryId, async (): Promise<FindingResult[]> => {
        const results: FindingResult[] = [];
        for (const [index, finding] of findings.entries()) {
          const reference = `TruffleHog ${finding.detectorName} finding ${index + 1} of ${findings.length}${finding.sourceName === '' ? '' : ` (${finding.sourceName})`}`;
          results.push(await handleFinding(runtime, {
            source: 'trufflehog', reference, observedAt: new Date().toISOString(), candidates: candidatesOf([finding.raw, finding.rawV2]),
          }, 'trufflehog'));
        }
        return results;
      });
      return reply.code(202).send({ deliveryId, duplicate: outcome.duplicate, results: outcome.result } satisfies DeliveryReply);
    });
  });
}
