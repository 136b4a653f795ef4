import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../../jobs/runtime.js';
import { auditLocation, readAuditPage } from '../../audit/select.js';
import { ID_PATTERN } from '../../inventory/schema.js';
import { mayAccessEnvironment } from '../auth.js';
import { sendProblem } from '../problem.js';

interface AuditQuery {
  environment?: string;
  credentialId?: string;
  runId?: string;
  from?: string;
  to?: string;
  limit?: string;
  afterSeq?: string;
}

const DATE_TIME = { type: 'string', format: 'date-time' } as const;

export function registerAuditRoutes(app: FastifyInstance, runtime: Runtime): void {
  const location = auditLocation(runtime.env);

  app.get<{ Querystring: AuditQuery }>('/v1/audit', {
    config: { role: 'viewer' },
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          environment: { type: 'string', pattern: ID_PATTERN },
          credentialId: { type: 'string', pattern: ID_PATTERN },
          runId: { type: 'string', maxLength: 64 },
          from: DATE_TIME,
          to: DATE_TIME,
          limit: { type: 'string', pattern: '^(1000|[1-9][0-9]{0,2})$' },
          afterSeq: { type: 'string', pattern: '^[0-9]{1,15}$' },
        },
      },
    },
  }, async (request, reply) => {
    const query = request.query;
    // A token limited to some environments reads the trail of one of them at a time.
    if (request.principal?.environments !== null && (query.environment === undefined || !mayAccessEnvironment(request.principal, query.environment))) {
      return sendProblem(reply, 403, 'FORBIDDEN', `${request.principal?.actor ?? 'this token'} is limited to some environments; pass ?environment= with one of them`);
    }
    const page = await readAuditPage(location, {
      filters: {
        environment: query.environment,
        credentialId: query.credentialId,
        runId: query.runId,
        from: query.from === undefined ? undefined : new Date(query.from),
        to: query.to === undefined ? undefined : new Date(query.to),
      },
      limit: Number(query.limit ?? '100'),
      afterSeq: query.afterSeq === undefined ? undefined : Number(query.afterSeq),
    });
    return page;
  });
}
