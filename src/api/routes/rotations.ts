import type { FastifyInstance } from 'fastify';
import { describeRun } from '../../../jobs/status.js';
import { createHash } from 'node:crypto';
import { oncePerDelivery } from '../../../jobs/findings.js';
import { canonicalJson } from '../../audit/index.js';
import { submitRotation, type SubmittedRun } from '../../../jobs/submit.js';
import type { Runtime } from '../../../jobs/runtime.js';
import type { RotationMode } from '../../contracts.js';
import { ID_PATTERN } from '../../inventory/schema.js';
import { mayAccessEnvironment } from '../auth.js';
import { sendProblem } from '../problem.js';

/** Rotation requests are small; a larger body is a mistake or an attack. */
const ROTATION_BODY_LIMIT = 16 * 1024;
const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

interface RotationBody {
  reason: string;
  mode: RotationMode;
  credentials?: string[];
  dryRun?: boolean;
  revokeFirst?: boolean;
}

/** How long an Idempotency-Key is remembered. */
const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

const rotationBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason', 'mode'],
  properties: {
    reason: { type: 'string', minLength: 1, maxLength: 500 },
    mode: { type: 'string', enum: ['scheduled', 'incident'] },
    credentials: { type: 'array', minItems: 1, maxItems: 1000, uniqueItems: true, items: { type: 'string', pattern: ID_PATTERN } },
    dryRun: { type: 'boolean' },
    revokeFirst: { type: 'boolean' },
  },
} as const;

export function registerRotationRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.post<{ Params: { environment: string }; Body: RotationBody }>('/v1/environments/:environment/rotations', {
    config: { role: 'operator' },
    bodyLimit: ROTATION_BODY_LIMIT,
    schema: {
      params: { type: 'object', properties: { environment: { type: 'string', pattern: ID_PATTERN } } },
      body: rotationBodySchema,
    },
  }, async (request, reply) => {
    const { environment } = request.params;
    if (!runtime.inventory.environments.has(environment)) {
      return sendProblem(reply, 404, 'ENVIRONMENT_NOT_FOUND', `environment "${environment}" is not in the inventory; known environments: ${[...runtime.inventory.environments.keys()].join(', ')}`);
    }
    if (request.body.reason.includes('[redacted]')) {
      return sendProblem(reply, 400, 'INVALID_REQUEST', 'the reason must not contain "[redacted]", which the audit trail reserves for secret values');
    }
    // Cutting a credential off before its replacement exists can stop workloads: admins only.
    if (request.body.revokeFirst === true && request.principal?.role !== 'admin') {
      return sendProblem(reply, 403, 'FORBIDDEN', `revokeFirst requires the admin role; ${request.principal?.actor ?? 'this token'} has ${request.principal?.role ?? 'none'}`);
    }
    const userAgent = request.headers['user-agent'] ?? '';
    const actor = request.principal?.actor ?? 'unknown';
    const submit = (): Promise<SubmittedRun> => submitRotation(runtime, {
      environment,
      mode: request.body.mode,
      reason: request.body.reason,
      revokeFirst: request.body.revokeFirst,
      credentialIds: request.body.credentials,
      dryRun: request.body.dryRun ?? false,
      actor,
      trigger: userAgent.startsWith('rekey-cli/') ? 'cli' : 'api',
    });

    const idempotencyKey = request.headers['idempotency-key'];
    let submitted: SubmittedRun;
    if (idempotencyKey === undefined) {
      submitted = await submit();
    } else {
      if (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
        return sendProblem(reply, 400, 'INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
      }
      // A repeated key returns the first request's run, as long as the request is the same.
      const { reason, mode, credentials, dryRun, revokeFirst } = request.body;
      const canonical = canonicalJson({ environment, reason, mode, credentials: credentials ?? null, dryRun: dryRun ?? false, revokeFirst: revokeFirst ?? false });
      const requestHash = createHash('sha256').update(canonical).digest('hex');
      const scope = createHash('sha256').update(`${actor}\n${idempotencyKey}`).digest('hex');
      const { result } = await oncePerDelivery(runtime, 'idempotency-key', scope, async () => ({ requestHash, submitted: await submit() }), IDEMPOTENCY_TTL_SECONDS);
      if (result.requestHash !== requestHash) {
        return sendProblem(reply, 422, 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request; send a new key for a new request');
      }
      submitted = result.submitted;
    }
    const statusUrl = `/v1/rotations/${submitted.runId}`;
    return reply.code(202).header('location', statusUrl).send({ ...submitted, statusUrl });
  });

  app.get<{ Params: { runId: string } }>('/v1/rotations/:runId', {
    config: { role: 'viewer' },
    schema: { params: { type: 'object', properties: { runId: { type: 'string', pattern: UUID_PATTERN } } } },
  }, async (request, reply) => {
    const run = await runtime.records.getRun(request.params.runId);
    // A run of an environment the token may not see is reported as missing, not as forbidden.
    if (run === null || !mayAccessEnvironment(request.principal, run.environment)) {
      return sendProblem(reply, 404, 'RUN_NOT_FOUND', `no run with id ${request.params.runId}`);
    }
    return describeRun(runtime, run);
  });
}
