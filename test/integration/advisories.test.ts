import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

const PACKAGE_LOCK = JSON.stringify({
  name: 'web', version: '1.0.0', lockfileVersion: 3, requires: true,
  packages: {
    '': { name: 'web', version: '1.0.0', dependencies: { 'colour-helper': '^2.0.0', express: '^4.19.0' } },
    'node_modules/colour-helper': { version: '2.4.1' },
    'node_modules/express': { version: '4.19.2' },
  },
});

const REQUIREMENTS = 'requests==2.31.0\nurllib3==2.2.1\n';

const INVENTORY = `
environments:
  web:
    dependencies: [package-lock.json]
    credentials:
      - id: session-key
        kind: generated-secret
        stores: [{ store: file, path: web/session-key }]
      - id: api-token
        kind: generated-secret
        stores: [{ store: file, path: web/api-token }]
  worker:
    credentials:
      - id: queue-token
        kind: generated-secret
        stores: [{ store: file, path: worker/queue-token }]
`;

function malAdvisory(id: string, ecosystem: string, name: string): Record<string, unknown> {
  return {
    schema_version: '1.6.0',
    id,
    modified: '2026-11-30T10:00:00Z',
    summary: `Malicious code in ${name} (${ecosystem})`,
    affected: [{ package: { ecosystem, name }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }] }] }],
  };
}

interface AdvisoryReply {
  advisory: string;
  dryRun: boolean;
  duplicate: boolean;
  affected: Array<{ environment: string; matches: Array<{ name: string; version: string }>; credentials: string[]; runId: string | null }>;
}

describe('compromised-package advisories', () => {
  let harness: Harness;

  async function runCount(): Promise<number> {
    return (await harness.runtime.redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:run:*`)).length;
  }

  beforeAll(async () => {
    harness = await startHarness({ inventory: INVENTORY, files: { 'package-lock.json': PACKAGE_LOCK } });
    const upload = await harness.app.inject({
      method: 'PUT', url: '/v1/environments/worker/dependencies?file=requirements.txt', headers: { ...harness.auth, 'content-type': 'text/plain' }, payload: REQUIREMENTS,
    });
    expect(upload.statusCode).toBe(200);
    expect(upload.json()).toEqual({ environment: 'worker', file: 'requirements.txt', format: 'requirements', packages: 2, skipped: [] });
  }, 60_000);

  afterAll(async () => {
    await harness?.close();
  });

  it('lists the dependency files of an environment', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/v1/environments/web/dependencies', headers: harness.auth });
    expect(response.json()).toEqual({ environment: 'web', files: [{ file: 'package-lock.json', source: 'inventory', format: 'package-lock', packages: 2, updatedAt: null }] });
  });

  it('plans a dry run without starting anything', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/advisories?dryRun=true', headers: harness.auth, payload: malAdvisory('MAL-2026-1001', 'npm', 'colour-helper') });
    expect(response.statusCode).toBe(200);
    const reply = response.json() as AdvisoryReply;
    expect(reply.affected.map((entry) => [entry.environment, entry.matches.map((match) => `${match.name}@${match.version}`), entry.credentials, entry.runId])).toEqual([
      ['web', ['colour-helper@2.4.1'], ['session-key', 'api-token'], null],
    ]);
    expect(await runCount()).toBe(0);
  });

  it('rotates every credential of the affected environment and no other', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/advisories', headers: harness.auth, payload: malAdvisory('MAL-2026-1002', 'npm', 'colour-helper') });
    expect(response.statusCode).toBe(202);
    const reply = response.json() as AdvisoryReply;
    expect(reply.affected.map((entry) => entry.environment)).toEqual(['web']);
    const run = await harness.waitForRun(reply.affected[0]!.runId!);
    expect(run.status).toBe('completed');
    expect(run.trigger).toBe('advisory');
    expect(run.mode).toBe('incident');
    expect(run.rotations.map((rotation) => rotation.credentialId)).toEqual(['session-key', 'api-token']);
    expect(await runCount()).toBe(1);

    const environment = (await harness.app.inject({ method: 'GET', url: '/v1/environments/worker', headers: harness.auth })).json();
    expect(environment.credentials[0].lastRotation).toBeNull();
  });

  it('answers a repeated advisory with the first reply', async () => {
    const first = (await harness.app.inject({ method: 'POST', url: '/v1/advisories', headers: harness.auth, payload: malAdvisory('MAL-2026-1003', 'PyPI', 'Requests') })).json() as AdvisoryReply;
    const second = (await harness.app.inject({ method: 'POST', url: '/v1/advisories', headers: harness.auth, payload: malAdvisory('MAL-2026-1003', 'PyPI', 'Requests') })).json() as AdvisoryReply;
    expect(first.affected.map((entry) => entry.environment)).toEqual(['worker']);
    expect(second.duplicate).toBe(true);
    expect(second.affected).toEqual(first.affected);
    await harness.waitForRun(first.affected[0]!.runId!);
  });

  it('rotates an environment that matches only after an upload', async () => {
    const advisory = malAdvisory('MAL-2026-1004', 'npm', 'late-helper');
    const before = (await harness.app.inject({ method: 'POST', url: '/v1/advisories', headers: harness.auth, payload: advisory })).json() as AdvisoryReply;
    expect(before.affected).toEqual([]);

    const lockfile = JSON.stringify({ lockfileVersion: 3, packages: { '': { name: 'worker' }, 'node_modules/late-helper': { version: '0.1.0' } } });
    const upload = await harness.app.inject({ method: 'PUT', url: '/v1/environments/worker/dependencies?file=package-lock.json', headers: { ...harness.auth, 'content-type': 'application/json' }, payload: lockfile });
    expect(upload.statusCode).toBe(200);

    const after = (await harness.app.inject({ method: 'POST', url: '/v1/advisories', headers: harness.auth, payload: advisory })).json() as AdvisoryReply;
    expect(after.duplicate).toBe(false);
    expect(after.affected.map((entry) => entry.environment)).toEqual(['worker']);
    await harness.waitForRun(after.affected[0]!.runId!);
  });

  it('rejects an advisory with no package it can match', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/advisories', headers: harness.auth, payload: malAdvisory('RUSTSEC-2026-0001', 'crates.io', 'evil') });
    expect(response.statusCode).toBe(422);
    expect(response.json().code).toBe('NOTHING_TO_MATCH');
  });

  it('matches nothing for a fixed version', async () => {
    const advisory = malAdvisory('GHSA-test-fixed', 'PyPI', 'urllib3');
    advisory.affected = [{ package: { ecosystem: 'PyPI', name: 'urllib3' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.0.0' }] }] }];
    const reply = (await harness.app.inject({ method: 'POST', url: '/v1/advisories?dryRun=true', headers: harness.auth, payload: advisory })).json() as AdvisoryReply;
    expect(reply.affected).toEqual([]);
  });

  it('rejects an invalid OSV document naming the field', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/v1/advisories', headers: harness.auth, payload: { id: 'MAL-x', affected: [{ package: { ecosystem: 'npm' } }] } });
    expect(response.statusCode).toBe(400);
    expect(response.json().detail).toBe('invalid OSV advisory: affected[0].package.name is missing');
  });

  it('deletes an uploaded dependency file', async () => {
    const upload = await harness.app.inject({ method: 'PUT', url: '/v1/environments/worker/dependencies?file=requirements-dev.txt', headers: { ...harness.auth, 'content-type': 'text/plain' }, payload: 'pytest==8.0.0\n' });
    expect(upload.statusCode).toBe(200);
    const removed = await harness.app.inject({ method: 'DELETE', url: '/v1/environments/worker/dependencies/requirements-dev.txt', headers: harness.auth });
    expect(removed.statusCode).toBe(204);
    const again = await harness.app.inject({ method: 'DELETE', url: '/v1/environments/worker/dependencies/requirements-dev.txt', headers: harness.auth });
    expect(again.statusCode).toBe(404);
    const files = (await harness.app.inject({ method: 'GET', url: '/v1/environments/worker/dependencies', headers: harness.auth })).json() as { files: Array<{ file: string }> };
    expect(files.files.map((entry) => entry.file)).not.toContain('requirements-dev.txt');
  });

  it('rejects an upload without a file name', async () => {
    const response = await harness.app.inject({ method: 'PUT', url: '/v1/environments/worker/dependencies', headers: { ...harness.auth, 'content-type': 'text/plain' }, payload: REQUIREMENTS });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('INVALID_REQUEST');
  });
});
