import type { FastifyInstance } from 'fastify';
import { oncePerDelivery } from '../../../jobs/findings.js';
import type { Runtime } from '../../../jobs/runtime.js';
import { submitRotation, type SubmittedCredential } from '../../../jobs/submit.js';
import { matchEnvironments, parseDependencyFile, parseOsv, type Dependency, type DependencyFormat } from '../../advisories/index.js';
import { RekeyError } from '../../errors.js';
import { ID_PATTERN } from '../../inventory/schema.js';
import { sendProblem } from '../problem.js';

/** Lockfiles of large applications reach a few megabytes. */
const DEPENDENCY_BODY_LIMIT = 10 * 1024 * 1024;
/** An OSV document lists versions; a few hundred kilobytes is already a very long one. */
const ADVISORY_BODY_LIMIT = 1024 * 1024;
const FORMATS: readonly DependencyFormat[] = ['package-lock', 'requirements', 'poetry-lock', 'pnpm-lock'];
/** How long an advisory (id and modification time) is remembered, so a repeated post joins the first. */
const ADVISORY_TTL_SECONDS = 30 * 24 * 3600;

interface AffectedEnvironment {
  environment: string;
  matches: Dependency[];
  credentials: string[];
  runId: string | null;
  rotations: SubmittedCredential[];
}

interface AdvisoryReply {
  advisory: string;
  dryRun: boolean;
  duplicate: boolean;
  affected: AffectedEnvironment[];
  ignored: Array<{ path: string; reason: string }>;
}

function describeMatches(matches: readonly Dependency[]): string {
  const listed = matches.slice(0, 5).map((dependency) => `${dependency.name}@${dependency.version}`).join(', ');
  return matches.length > 5 ? `${listed} and ${matches.length - 5} more` : listed;
}

export function registerAdvisoryRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get<{ Params: { environment: string } }>('/v1/environments/:environment/dependencies', { config: { role: 'viewer' } }, async (request, reply) => {
    const { environment } = request.params;
    if (!runtime.inventory.environments.has(environment)) {
      return sendProblem(reply, 404, 'ENVIRONMENT_NOT_FOUND', `environment "${environment}" is not in the inventory`);
    }
    return { environment, files: await runtime.dependencies.describe(environment) };
  });

  app.delete<{ Params: { environment: string; file: string } }>('/v1/environments/:environment/dependencies/:file', { config: { role: 'operator' } }, async (request, reply) => {
    const { environment, file } = request.params;
    if (!(await runtime.dependencies.remove(environment, file))) {
      return sendProblem(reply, 404, 'DEPENDENCY_FILE_NOT_FOUND', `environment "${environment}" has no uploaded dependency file "${file}"; files named in the inventory change only with the inventory`);
    }
    return reply.code(204).send();
  });

  void app.register(async (scope) => {
    // Dependency files arrive as they are on disk: JSON, TOML, YAML or plain text.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

    scope.put<{ Params: { environment: string }; Querystring: { file?: string; format?: DependencyFormat }; Body: string }>('/v1/environments/:environment/dependencies', {
      config: { role: 'operator' },
      bodyLimit: DEPENDENCY_BODY_LIMIT,
      schema: {
        params: { type: 'object', properties: { environment: { type: 'string', pattern: ID_PATTERN } } },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { file: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._-]+$' }, format: { type: 'string', enum: [...FORMATS] } },
        },
      },
    }, async (request, reply) => {
      const { environment } = request.params;
      if (!runtime.inventory.environments.has(environment)) {
        return sendProblem(reply, 404, 'ENVIRONMENT_NOT_FOUND', `environment "${environment}" is not in the inventory`);
      }
      const file = request.query.file ?? request.query.format;
      if (file === undefined) {
        return sendProblem(reply, 400, 'INVALID_REQUEST', 'name the uploaded file with ?file=package-lock.json (or requirements.txt, poetry.lock, pnpm-lock.yaml), or give ?format=');
      }
      const list = parseDependencyFile(request.query.file, typeof request.body === 'string' ? request.body : '', request.query.format);
      await runtime.dependencies.upload(environment, file, list);
      return { environment, file, format: list.format, packages: list.dependencies.length, skipped: list.skipped };
    });
  });

  app.post<{ Querystring: { dryRun?: 'true' | 'false' }; Body: unknown }>('/v1/advisories', {
    config: { role: 'operator' },
    bodyLimit: ADVISORY_BODY_LIMIT,
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { dryRun: { type: 'string', enum: ['true', 'false'] } } } },
  }, async (request, reply) => {
    // An advisory can rotate any environment, so a token scoped to some may not post one.
    if (request.principal?.environments !== null) {
      return sendProblem(reply, 403, 'FORBIDDEN', `${request.principal?.actor ?? 'this token'} is limited to some environments; posting an advisory needs a token for all of them`);
    }
    const advisory = parseOsv(request.body);
    const dryRun = request.query.dryRun === 'true';
    const actor = request.principal?.actor ?? 'unknown';
    const ignored = advisory.ignored.map((entry) => ({ path: entry.path, reason: entry.reason }));
    if (advisory.withdrawn !== undefined) {
      throw new RekeyError('INVALID_PARAMETERS', `advisory ${advisory.id} was withdrawn on ${advisory.withdrawn}; nothing to rotate`);
    }
    if (advisory.affected.length === 0) {
      return sendProblem(reply, 422, 'NOTHING_TO_MATCH', `advisory ${advisory.id} names no npm or PyPI package rekey can match; see "ignored" in a dry run`);
    }

    const matchAll = async (): Promise<AffectedEnvironment[]> => {
      const dependencies = await runtime.dependencies.all(runtime.inventory.environments.keys());
      return matchEnvironments(advisory, dependencies).map((match) => ({
        environment: match.environment,
        matches: match.matches,
        credentials: runtime.inventory.environments.get(match.environment)?.credentials.map((credential) => credential.id) ?? [],
        runId: null,
        rotations: [],
      }));
    };

    if (dryRun) {
      return reply.code(200).send({ advisory: advisory.id, dryRun, duplicate: false, affected: await matchAll(), ignored } satisfies AdvisoryReply);
    }

    // Each environment is rotated once per advisory (id and modification time): posting it again
    // returns the first run of an environment already handled, and rotates one that matches only
    // now (its dependencies were uploaded since).
    const affected = await matchAll();
    let duplicates = 0;
    for (const entry of affected) {
      const once = await oncePerDelivery(runtime, 'advisory', `${advisory.id}@${advisory.modified ?? ''}:${entry.environment}`, async () => {
        const submitted = await submitRotation(runtime, {
          environment: entry.environment,
          mode: 'incident',
          reason: `advisory ${advisory.id}: ${describeMatches(entry.matches)} ran in this environment`,
          dryRun: false,
          actor,
          trigger: 'advisory',
        });
        return { runId: submitted.runId, rotations: submitted.credentials };
      }, ADVISORY_TTL_SECONDS);
      entry.runId = once.result.runId;
      entry.rotations = once.result.rotations;
      if (once.duplicate) duplicates += 1;
    }
    const duplicate = affected.length > 0 && duplicates === affected.length;
    return reply.code(202).send({ advisory: advisory.id, dryRun, duplicate, affected, ignored } satisfies AdvisoryReply);
  });
}
