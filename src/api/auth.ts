import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from './problem.js';

/** The identity a request authenticated as. */
export interface Principal {
  actor: string;
  role: 'admin';
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** False for routes that need no token (the health probes). */
    auth?: boolean;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Returns an onRequest hook that requires `Authorization: Bearer <token>` matching the bootstrap
 * token. Both sides are hashed first, so the comparison takes the same time whatever the length
 * or content of the token presented.
 */
export function bearerAuth(token: string): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const expected = digest(token);
  return async (request, reply) => {
    if (request.routeOptions.config.auth === false) return undefined;
    const header = request.headers.authorization;
    if (header === undefined) {
      reply.header('www-authenticate', 'Bearer realm="rekey"');
      return sendProblem(reply, 401, 'UNAUTHENTICATED', 'missing Authorization header: send "Authorization: Bearer <token>"');
    }
    const match = /^Bearer ([\x21-\x7e]+)$/.exec(header);
    if (match === null) {
      reply.header('www-authenticate', 'Bearer realm="rekey", error="invalid_request"');
      return sendProblem(reply, 401, 'UNAUTHENTICATED', 'malformed Authorization header: expected "Bearer <token>"');
    }
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      reply.header('www-authenticate', 'Bearer realm="rekey", error="invalid_token"');
      return sendProblem(reply, 401, 'UNAUTHENTICATED', 'invalid API token');
    }
    request.principal = { actor: 'bootstrap-admin', role: 'admin' };
    return undefined;
  };
}
