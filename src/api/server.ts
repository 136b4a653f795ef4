import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Runtime } from '../../jobs/runtime.js';
import { AuthFailureLimiter } from './auth-failures.js';
import { bearerAuth } from './auth.js';
import { OidcVerifier, readOidcConfig } from './oidc.js';
import { tokenStoreFor } from './token-store-select.js';
import { handleError, sendProblem } from './problem.js';
import { registerAdvisoryRoutes } from './routes/advisories.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerCredentialRoutes } from './routes/credentials.js';
import { registerEnvironmentRoutes } from './routes/environments.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerRotationRoutes } from './routes/rotations.js';
import { registerWebhookRoutes } from './routes/webhooks.js';

/** The default body limit for routes that set none. */
const DEFAULT_BODY_LIMIT = 64 * 1024;

/**
 * Builds the API. It validates, authenticates and enqueues; it never calls a provider during a
 * request, so a slow cloud cannot hold a connection open.
 */
/**
 * Identifies the caller a rate limit counts against: the bearer token (hashed, so the token never
 * becomes a Redis key), or the source address for webhooks and requests without a token.
 */
function rateLimitKey(request: FastifyRequest): string {
  const authorization = request.headers.authorization;
  if (authorization === undefined || request.url.startsWith('/v1/webhooks/')) return `source:${request.ip}`;
  return `token:${createHash('sha256').update(authorization).digest('hex').slice(0, 32)}`;
}

/** Trusts the nearest `hops` proxies, as Fastify's numeric trustProxy does. */
function trustHops(hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops;
}

export async function buildServer(runtime: Runtime): Promise<FastifyInstance> {
  if (runtime.config.apiToken === undefined || runtime.config.apiToken.length < 16) {
    throw new Error('REKEY_API_TOKEN must be set to a token of at least 16 characters before the API starts');
  }

  const app = Fastify({
    loggerInstance: runtime.logger as FastifyBaseLogger,
    bodyLimit: DEFAULT_BODY_LIMIT,
    // Behind an ingress, request.ip (rate limits, failed authentications) must be the client's.
    trustProxy: typeof runtime.config.trustProxy === 'number' ? trustHops(runtime.config.trustProxy) : runtime.config.trustProxy,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    // Errors the router raises before any route runs (a malformed URL, an over-long path
    // parameter) become problem responses too. Their messages quote the URL, so they are not used.
    frameworkErrors: (error, _request, reply) => {
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendProblem(reply, 414, 'URI_TOO_LONG', 'a path parameter is longer than 100 characters');
      return sendProblem(reply, 400, 'INVALID_URL', 'the request URL is malformed');
    },
  });

  // Registered before any route, so every route gets the limit; the health probes opt out.
  await app.register(rateLimit, {
    global: true,
    max: runtime.config.rateLimitPerMinute,
    timeWindow: 60_000,
    redis: runtime.redis,
    // Beside, not under, the prefix of rekey's records: a counter is no record, and it expires.
    nameSpace: `${runtime.config.redisPrefix}-rate-limit:`,
    keyGenerator: rateLimitKey,
    errorResponseBuilder: (_request, context) => ({
      statusCode: 429,
      code: 'RATE_LIMITED',
      message: `more than ${context.max} requests a minute from this token or source; retry in ${Math.ceil(context.ttl / 1000)} s`,
    }),
  });

  // Every route states who may call it. A route that declares no role fails at start-up, not in use.
  app.addHook('onRoute', (route) => {
    const config = route.config as { auth?: boolean; role?: string } | undefined;
    if (config?.auth !== false && config?.role === undefined) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no role: set config.role, or config.auth = false for a route that authenticates otherwise`);
    }
  });
  const tokens = tokenStoreFor(runtime.env, (error) => runtime.logger.warn({ err: error.message }, 'idle PostgreSQL token store connection failed'));
  const oidcConfig = readOidcConfig(runtime.env);
  const authenticate = bearerAuth(runtime.config.apiToken, tokens, oidcConfig === null ? null : new OidcVerifier(oidcConfig));
  const failures = new AuthFailureLimiter(runtime.redis, runtime.config.redisPrefix, runtime.config.authFailuresPerMinute);
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.auth === false) return authenticate(request, reply);
    const retryAfter = await failures.blockedFor(request.ip);
    if (retryAfter > 0) {
      reply.header('retry-after', String(retryAfter));
      return sendProblem(reply, 429, 'RATE_LIMITED', `more than ${failures.perMinute} failed authentications a minute from this address; retry in ${retryAfter} s`);
    }
    const result = await authenticate(request, reply);
    if (reply.statusCode === 401) await failures.record(request.ip);
    return result;
  });
  app.addHook('onClose', () => tokens.close());
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => sendProblem(reply, 404, 'ROUTE_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`));

  registerHealthRoutes(app, runtime);
  registerRotationRoutes(app, runtime);
  registerEnvironmentRoutes(app, runtime);
  registerWebhookRoutes(app, runtime);
  registerAdvisoryRoutes(app, runtime);
  registerAuditRoutes(app, runtime);
  registerCredentialRoutes(app, runtime);
  return app;
}
