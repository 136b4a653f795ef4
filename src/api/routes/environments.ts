import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../../jobs/runtime.js';
import type { EnvironmentEntry } from '../../inventory/schema.js';
import { mayAccessEnvironment } from '../auth.js';
import { sendProblem } from '../problem.js';

async function describeEnvironment(runtime: Runtime, environment: EnvironmentEntry): Promise<Record<string, unknown>> {
  const credentials = [];
  for (const credential of environment.credentials) {
    credentials.push({
      id: credential.id,
      kind: credential.kind,
      description: credential.description ?? null,
      params: credential.params,
      gracePeriodSeconds: credential.gracePeriodMs / 1000,
      stores: credential.stores.map((target) => ({ store: target.store, ...target.params })),
      lastRotation: await runtime.records.lastRotation(environment.name, credential.id),
      activeRotation: await runtime.records.activeRotation(environment.name, credential.id),
    });
  }
  return { name: environment.name, description: environment.description ?? null, credentials };
}

export function registerEnvironmentRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get('/v1/environments', { config: { role: 'viewer' } }, async (request) => {
    const environments = [];
    for (const environment of runtime.inventory.environments.values()) {
      if (mayAccessEnvironment(request.principal, environment.name)) environments.push(await describeEnvironment(runtime, environment));
    }
    return { environments };
  });

  app.get<{ Params: { environment: string } }>('/v1/environments/:environment', { config: { role: 'viewer' } }, async (request, reply) => {
    const environment = runtime.inventory.environments.get(request.params.environment);
    if (environment === undefined) return sendProblem(reply, 404, 'ENVIRONMENT_NOT_FOUND', `environment "${request.params.environment}" is not in the inventory; known environments: ${[...runtime.inventory.environments.keys()].join(', ')}`);
    return describeEnvironment(runtime, environment);
  });
}
