import type { FastifyInstance } from 'fastify';
import { forceClose } from '../../../jobs/force-close.js';
import type { Runtime } from '../../../jobs/runtime.js';
import { ID_PATTERN } from '../../inventory/schema.js';
import { sendProblem } from '../problem.js';

/** A force-close request carries one short reason; a larger body is a mistake or an attack. */
const FORCE_CLOSE_BODY_LIMIT = 4 * 1024;

interface ForceCloseBody {
  reason: string;
}

export function registerCredentialRoutes(app: FastifyInstance, runtime: Runtime): void {
  // Closing a rotation can leave an old key working that rekey never revoked, so only admins may.
  app.post<{ Params: { environment: string; credentialId: string }; Body: ForceCloseBody }>('/v1/environments/:environment/credentials/:credentialId/force-close', {
    config: { role: 'admin' },
    bodyLimit: FORCE_CLOSE_BODY_LIMIT,
    schema: {
      params: {
        type: 'object',
        properties: { environment: { type: 'string', pattern: ID_PATTERN }, credentialId: { type: 'string', pattern: ID_PATTERN } },
      },
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['reason'],
        properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } },
      },
    },
  }, async (request, reply) => {
    const userAgent = request.headers['user-agent'] ?? '';
    const outcome = await forceClose(runtime, {
      environment: request.params.environment,
      credentialId: request.params.credentialId,
      reason: request.body.reason,
      actor: request.principal?.actor ?? 'unknown',
      trigger: userAgent.startsWith('rekey-cli/') ? 'cli' : 'api',
    });
    if (outcome.status === 'rejected') return sendProblem(reply, outcome.httpStatus, outcome.code, outcome.detail);
    return reply.code(200).send(outcome.result);
  });
}
