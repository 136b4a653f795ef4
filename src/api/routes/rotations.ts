import type { FastifyInstance } from 'fastify';
import { describeRun } from '../../../jobs/status.js';
import { submitRotation } from '../../../jobs/submit.js';
import type { Runtime } from '../../../jobs/runtime.js';
import type { RotationMode } from '../../contracts.js';
import { ID_PATTERN } from '../../inventory/schema.js';
import { sendProblem } from '../problem.js';

/** Rotation requests are small; a larger body is a mistake or an attack. */
const ROTATION_BODY_LIMIT = 16 * 1024;
const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

interface RotationBody {
  reason: string;
  mode: RotationMode;
  credentials?: string[];
  dryRun?: boolean;
}

const rotationBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason', 'mode'],
  properties: {
    reason: { type: 'string', minLength: 1, maxLength: 500 },
    mode: { type: 'string', enum: ['scheduled', 'incident'] },
    credentials: { type: 'array', minItems: 1, maxItems: 1000, uniqueItems: true, items: { type: 'string', pattern: ID_PATTERN } },
    dryRun: { type: 'boolean' },
  },
} as const;

export function registerRotationRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.post<{ Params: { environment: string }; Body: RotationBody }>('/v1/environments/:environment/rotations', {
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
    const userAgent = request.headers['user-agent'] ?? '';
    const submitted = await submitRotation(runtime, {
      environment,
      mode: request.body.mode,
      reason: request.body.reason,
      credentialIds: request.body.credentials,
      dryRun: request.body.dryRun ?? false,
      actor: request.principal?.actor ?? 'unknown',
      trigger: userAgent.startsWith('rekey-cli/') ? 'cli' : 'api',
    });
    const statusUrl = `/v1/rotations/${submitted.runId}`;
    return reply.code(202).header('location', statusUrl).send({ ...submitted, statusUrl });
  });

  app.get<{ Params: { runId: string } }>('/v1/rotations/:runId', {
    schema: { params: { type: 'object', properties: { runId: { type: 'string', pattern: UUID_PATTERN } } } },
  }, async (request, reply) => {
    const run = await runtime.records.getRun(request.params.runId);
    if (run === null) return sendProblem(reply, 404, 'RUN_NOT_FOUND', `no run with id ${request.params.runId}`);
    return describeRun(runtime, run);
  });
}
