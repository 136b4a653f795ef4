import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CATALOGUE, isRekeyError, quoteError } from '../errors.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An RFC 9457 problem details object. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  code?: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Content Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 422: 'Unprocessable Content', 429: 'Too Many Requests', 500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Sends a problem response. The type URI names the error code, so clients can branch on it. */
export function sendProblem(reply: FastifyReply, status: number, code: string, detail: string, title?: string): FastifyReply {
  const problem: Problem = {
    type: `urn:rekey:problem:${code.toLowerCase().replace(/_/g, '-')}`,
    title: title ?? TITLES[status] ?? 'Error',
    status,
    detail,
    instance: reply.request.url,
    code,
  };
  return reply.code(status).type(PROBLEM_CONTENT_TYPE).send(problem);
}

function describeValidation(error: FastifyError): string {
  const parts = (error.validation ?? []).map((issue) => {
    const where = `${error.validationContext ?? 'request'}${issue.instancePath.replace(/\//g, '.')}`;
    const params = issue.params as Record<string, unknown>;
    if (issue.keyword === 'additionalProperties') return `${where} has unknown property "${String(params.additionalProperty)}"`;
    if (issue.keyword === 'enum') return `${where} must be one of ${(params.allowedValues as unknown[]).map((value) => JSON.stringify(value)).join(', ')}`;
    if (issue.keyword === 'pattern') return `${where} has an invalid format`;
    return `${where} ${issue.message ?? 'is invalid'}`;
  });
  return parts.join('; ');
}

/**
 * Turns every error into a problem response. Domain errors keep their code and message (which
 * carry ids, never values); anything unexpected becomes a 500 whose detail reveals nothing internal.
 */
export function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.validation !== undefined) return sendProblem(reply, 400, 'INVALID_REQUEST', describeValidation(error));
  if (isRekeyError(error) && error.code === 'AUDIT_UNAVAILABLE') {
    // The message quotes the audit sink's driver (hosts, paths): the log gets it, the caller not.
    request.log.error({ err: error.message }, 'audit trail cannot be written');
    return sendProblem(reply, 503, error.code, 'the audit trail cannot be written, so rekey changes nothing; the server log has the reason', ERROR_CATALOGUE[error.code].title);
  }
  if (isRekeyError(error)) return sendProblem(reply, error.status, error.code, error.message, ERROR_CATALOGUE[error.code].title);

  if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    // Fastify's message quotes the parser's, which quotes part of the body.
    return sendProblem(reply, 400, 'INVALID_JSON', 'the request body is not valid JSON');
  }
  const status = error.statusCode ?? 500;
  if (status === 413) return sendProblem(reply, 413, 'BODY_TOO_LARGE', `request body exceeds the limit of ${request.routeOptions.bodyLimit ?? 0} bytes`);
  if (status === 415) return sendProblem(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'send the request body as application/json');
  if (status >= 400 && status < 500) return sendProblem(reply, status, error.code ?? 'BAD_REQUEST', error.message);

  // ioredis gives up on a command after its retries while Redis is unreachable.
  if (error.name === 'MaxRetriesPerRequestError' || /ECONNREFUSED|Connection is closed/.test(error.message)) {
    request.log.error({ err: quoteError(error) }, 'redis unavailable');
    return sendProblem(reply, 503, 'REDIS_UNAVAILABLE', 'rekey cannot reach Redis at REDIS_URL; retry when GET /readyz answers 200');
  }

  request.log.error({ err: quoteError(error) }, 'request failed');
  return sendProblem(reply, 500, 'INTERNAL', 'the request failed inside rekey; the server log has the request id');
}
