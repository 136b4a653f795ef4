import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { OidcVerifier } from './oidc.js';
import { sendProblem } from './problem.js';
import { roleAllows, type Role, type TokenCheck, type TokenStore } from './tokens.js';

/** The identity a request authenticated as. */
export interface Principal {
  /** Recorded as the actor of every change the request causes: `bootstrap-admin`, `token:<id>` or `oidc:<sub>`. */
  actor: string;
  role: Role;
  /** Environments the principal may act on; null for all. */
  environments: string[] | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** False for routes that authenticate otherwise (health probes, signed webhooks). */
    auth?: boolean;
    /** The minimum role that may call the route. A route that declares none stops the server at start-up. */
    role?: Role;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Returns whether the principal may act on `environment`. */
export function mayAccessEnvironment(principal: Principal | undefined, environment: string): boolean {
  return principal !== undefined && (principal.environments === null || principal.environments.includes(environment));
}

/** Three base64url parts, the last empty for an unsecured JWT (which is then rejected by its algorithm). */
const JWT_PATTERN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

type Authentication = { principal: Principal } | { reply: FastifyReply } | { principal: undefined };

/**
 * Returns an onRequest hook that authenticates `Authorization: Bearer <token>` and checks the
 * route's role and the environment in its path. The bootstrap token (REKEY_API_TOKEN) is an
 * admin for every environment. A JWT goes to `oidc` when OIDC is configured; other tokens come
 * from the token store. Tokens are compared as SHA-256 digests in constant time, whatever their
 * length or content.
 */
export function bearerAuth(bootstrapToken: string, tokens: TokenStore, oidc: OidcVerifier | null = null): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const expected = digest(bootstrapToken);
  return async (request, reply) => {
    const config = request.routeOptions.config;
    if (config.auth === false) return undefined;

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

    const presented = match[1]!;
    let authentication: Authentication;
    if (timingSafeEqual(digest(presented), expected)) {
      authentication = { principal: { actor: 'bootstrap-admin', role: 'admin', environments: null } };
    } else if (oidc !== null && JWT_PATTERN.test(presented)) {
      authentication = await authenticateJwt(oidc, presented, request, reply);
    } else {
      authentication = await authenticateApiToken(tokens, presented, request, reply);
    }
    if ('reply' in authentication) return authentication.reply;
    const { principal } = authentication;
    if (principal === undefined) {
      reply.header('www-authenticate', 'Bearer realm="rekey", error="invalid_token"');
      return sendProblem(reply, 401, 'UNAUTHENTICATED', 'invalid API token');
    }

    const required = config.role ?? 'admin';
    if (!roleAllows(principal.role, required)) {
      return sendProblem(reply, 403, 'FORBIDDEN', `${principal.actor} has role ${principal.role}; ${request.method} ${request.routeOptions.url ?? ''} requires ${required}`);
    }
    const environment = (request.params as { environment?: unknown } | undefined)?.environment;
    if (typeof environment === 'string' && !mayAccessEnvironment(principal, environment)) {
      return sendProblem(reply, 403, 'FORBIDDEN', `${principal.actor} may not act on environment "${environment}"`);
    }
    request.principal = principal;
    return undefined;
  };
}

async function authenticateApiToken(tokens: TokenStore, presented: string, request: FastifyRequest, reply: FastifyReply): Promise<Authentication> {
  let checked: TokenCheck;
  try {
    checked = await tokens.check(presented);
  } catch (error) {
    // The message names the store and the driver's error, never the presented token.
    request.log.error({ err: (error as Error).message }, 'token store unavailable');
    reply.header('retry-after', '5');
    return { reply: sendProblem(reply, 503, 'TOKEN_STORE_UNAVAILABLE', 'the API token store could not be read; retry later') };
  }
  if (checked.status === 'expired') {
    reply.header('www-authenticate', 'Bearer realm="rekey", error="invalid_token"');
    return { reply: sendProblem(reply, 401, 'TOKEN_EXPIRED', `API token ${checked.token.id} expired at ${checked.token.expiresAt ?? ''}; create a new one with rekey token create`) };
  }
  if (checked.status === 'valid') return { principal: { actor: `token:${checked.token.id}`, role: checked.token.role, environments: checked.token.environments } };
  return { principal: undefined };
}

async function authenticateJwt(oidc: OidcVerifier, presented: string, request: FastifyRequest, reply: FastifyReply): Promise<Authentication> {
  const result = await oidc.verify(presented);
  if (result.status === 'valid') return { principal: { actor: `oidc:${result.subject}`, role: result.grant.role, environments: result.grant.environments } };
  if (result.status === 'unavailable') {
    request.log.error({ err: result.detail }, 'OIDC keys unavailable');
    reply.header('retry-after', '5');
    return { reply: sendProblem(reply, 503, 'OIDC_UNAVAILABLE', "the OIDC issuer's keys could not be fetched; retry later") };
  }
  if (result.httpStatus === 401) reply.header('www-authenticate', 'Bearer realm="rekey", error="invalid_token"');
  return { reply: sendProblem(reply, result.httpStatus, result.code, result.detail) };
}
