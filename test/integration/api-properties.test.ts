import { randomBytes, randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signGitGuardian, signGithub, signHmacSha256 } from '../../src/webhooks/signatures.js';
import { startHarness, type Harness } from '../support/harness.js';

/**
 * Property-based tests of every API route, sent through inject. No generated request gets a 5xx,
 * every 4xx is a problem document, and a rejected request changes no state. No response, response
 * header or log line contains the canary, which the generators put where secrets travel (tokens,
 * signatures, secret fields, URL credentials).
 *
 * A failure prints fast-check's seed and path. Run it again with FC_SEED=<seed> FC_PATH=<path>.
 */

const SEED = process.env.FC_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FC_SEED);
const PATH = process.env.FC_PATH;
const RUNS_PER_GROUP = 1000;

const CANARY_CORE = randomBytes(16).toString('hex');
const CANARY = `rkcanary${CANARY_CORE}`;
/** A prefix of the canary's random part: it survives JSON and URL encoding and a truncated quote. */
const CANARY_NEEDLE = CANARY_CORE.slice(0, 16);

const GITHUB_SECRET = randomBytes(24).toString('hex');
const TRUFFLEHOG_SECRET = randomBytes(24).toString('hex');
const GITGUARDIAN_TOKEN = randomBytes(24).toString('hex');

const INVENTORY = `
environments:
  demo:
    credentials:
      - id: api-token
        kind: generated-secret
        stores:
          - store: file
            path: demo/api-token
      - id: db-secret
        kind: generated-secret
        params: { bytes: 16 }
        stores:
          - store: file
            path: demo/db-secret
  staging:
    credentials:
      - id: api-token
        kind: generated-secret
        stores:
          - store: file
            path: staging/api-token
`;

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;

/** Headers that inject computes or that would make it wait for bytes that never come. */
const RESERVED_HEADERS = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'expect', 'te', 'upgrade', 'authorization', 'content-type']);

interface GeneratedRequest {
  method: (typeof METHODS)[number];
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/** Everything a rejected request must leave unchanged. */
interface StateSnapshot {
  redis: Map<string, string>;
  auditBytes: number;
}

// ---------------------------------------------------------------------------------------------
// Generators shared by the route groups
// ---------------------------------------------------------------------------------------------

const printable = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength });

const environmentSegment: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('demo', 'staging') },
  { weight: 1, arbitrary: fc.constantFrom('nowhere', '__proto__', 'constructor', 'hasOwnProperty', '..', '%2e%2e', 'demo%00', 'DEMO', 'demo%2Frotations', 'a'.repeat(300)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((text) => encodeURIComponent(text)) },
);

const queryString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constantFrom('?', '?a=1', '?a=1&a=2', '?__proto__[x]=1', '?dryRun=true', '?limit=5', '?%zz') },
  { weight: 1, arbitrary: fc.dictionary(printable(8), printable(12), { maxKeys: 3 }).map((entries) => `?${new URLSearchParams(entries).toString()}`) },
);

const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  { weight: 1, arbitrary: fc.constant(undefined) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'text/plain', 'application/x-ndjson',
      'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=x', 'application/problem+json',
      'application/jsonx', '', ';;;', 'application/json;', 'text/*', '*/*', `application/json; canary=${CANARY}`,
    ),
  },
  { weight: 1, arbitrary: printable(30) },
);

const headerName: fc.Arbitrary<string> = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/).filter((name) => !RESERVED_HEADERS.has(name));

/** Extra headers, some carrying the canary where clients put secrets. */
const extraHeaders: fc.Arbitrary<Record<string, string>> = fc.tuple(
  fc.dictionary(headerName, printable(40), { maxKeys: 3 }),
  fc.subarray([
    ['x-api-key', CANARY], ['cookie', `session=${CANARY}`], ['proxy-authorization', `Basic ${CANARY}`], ['x-auth-token', CANARY],
    ['x-github-token', CANARY], ['user-agent', 'rekey-cli/0.1.0'],
  ] as Array<[string, string]>),
).map(([random, chosen]) => ({ ...random, ...Object.fromEntries(chosen) }));

type AuthMode = 'valid' | 'missing' | 'wrong' | 'basic' | 'lower-case' | 'trailing-space' | 'empty' | 'control-character';
const authMode: fc.Arbitrary<AuthMode> = fc.oneof(
  { weight: 5, arbitrary: fc.constant<AuthMode>('valid') },
  { weight: 3, arbitrary: fc.constantFrom<AuthMode>('missing', 'wrong', 'basic', 'lower-case', 'trailing-space', 'empty', 'control-character') },
);

/** Bodies that no route should accept as JSON, and a few that parsers handle specially. */
const rawBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.constantFrom('', ' ', '{', '[', 'null', '0', '"x"', '[]', '{}', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}', `{"reason":"${CANARY}`, `${CANARY}\n{`),
  fc.string({ maxLength: 120 }),
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.uint8Array({ maxLength: 120 }).map((bytes) => Buffer.from(bytes)),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value) ?? 'null'),
);

/** Picks a good value most of the time, otherwise any JSON value. */
function mostly<T>(good: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> {
  return fc.oneof({ weight: 5, arbitrary: good }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
}

function authorizationHeader(harness: Harness, mode: AuthMode): Record<string, string> {
  switch (mode) {
    case 'valid': return harness.auth;
    case 'missing': return {};
    case 'wrong': return { authorization: `Bearer ${CANARY}` };
    case 'basic': return { authorization: `Basic ${Buffer.from(`admin:${CANARY}`).toString('base64')}` };
    case 'lower-case': return { authorization: `bearer ${harness.token}` };
    case 'trailing-space': return { authorization: `Bearer ${harness.token} ` };
    case 'empty': return { authorization: '' };
    case 'control-character': return { authorization: `Bearer ${CANARY}\t${harness.token}` };
  }
}

// ---------------------------------------------------------------------------------------------
// Route groups
// ---------------------------------------------------------------------------------------------

const rotationBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      reason: fc.string({ minLength: 1, maxLength: 40 }),
      mode: fc.constantFrom('scheduled', 'incident'),
      credentials: fc.constantFrom(['api-token'], ['db-secret'], ['api-token', 'db-secret']),
      dryRun: fc.boolean(),
      revokeFirst: fc.constant(false),
    }, { requiredKeys: ['reason', 'mode'] }).map((body) => JSON.stringify(body)),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      reason: mostly(fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.constant(''), fc.constant('r'.repeat(501)))),
      mode: mostly(fc.constantFrom('scheduled', 'incident', 'Incident', '')),
      credentials: mostly(fc.oneof(
        fc.constantFrom(['api-token'], ['db-secret'], ['api-token', 'db-secret'], ['api-token', 'api-token'], [], ['nope'], ['../x'], ['__proto__']),
        fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
      )),
      dryRun: mostly(fc.boolean()),
      revokeFirst: mostly(fc.boolean()),
      apiKey: fc.constant(CANARY),
      padding: fc.constant('p'.repeat(17 * 1024)),
    }, { requiredKeys: [] }).map((body) => JSON.stringify(body)),
  },
  { weight: 2, arbitrary: rawBody },
);

const idempotencyKey: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.constantFrom('key-one', 'key-two', CANARY) },
  { weight: 1, arbitrary: fc.constantFrom('', 'has space', 'x'.repeat(256), 'ünïcode') },
  { weight: 1, arbitrary: printable(20) },
);

function rotationRequests(harness: Harness): fc.Arbitrary<GeneratedRequest> {
  return fc.record({
    method: fc.oneof({ weight: 8, arbitrary: fc.constant('POST' as const) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
    environment: environmentSegment,
    suffix: fc.oneof({ weight: 8, arbitrary: fc.constant('/rotations') }, { weight: 1, arbitrary: fc.constantFrom('/rotations/', '/Rotations', '/rotations/x', '//rotations') }),
    query: queryString,
    auth: authMode,
    contentType,
    idempotencyKey,
    extra: extraHeaders,
    body: rotationBody,
  }).map((generated) => ({
    method: generated.method,
    url: `/v1/environments/${generated.environment}${generated.suffix}${generated.query}`,
    headers: {
      ...generated.extra,
      ...authorizationHeader(harness, generated.auth),
      ...(generated.contentType === undefined ? {} : { 'content-type': generated.contentType }),
      ...(generated.idempotencyKey === undefined ? {} : { 'idempotency-key': generated.idempotencyKey }),
    },
    payload: generated.method === 'GET' || generated.method === 'HEAD' ? undefined : generated.body,
  }));
}

/** Responses per route group and status code, printed after the run to show what the generators reached. */
const statusTally = new Map<string, number>();

/** Run ids of accepted rotations, so the status route is also asked about runs that exist. */
const knownRunIds: string[] = [];

function readRequests(harness: Harness): fc.Arbitrary<GeneratedRequest> {
  const runId = fc.oneof(
    fc.constant('known'),
    fc.uuid(),
    fc.constantFrom('00000000-0000-0000-0000-000000000000', 'not-a-uuid', randomUUID().toUpperCase(), '%00', '..%2F..%2Fhealthz'),
    fc.string({ maxLength: 40 }).map((text) => encodeURIComponent(text)),
  );
  const fileName = fc.oneof(fc.constantFrom('requirements.txt', 'package-lock.json', 'poetry.lock', 'nope.txt', '__proto__', '%2e%2e'), fc.string({ maxLength: 20 }).map((text) => encodeURIComponent(text)));
  const path = fc.oneof(
    fc.constantFrom('/healthz', '/readyz', '/v1/environments', '/v1/findings', '/', '/v1', '/v1/', '/v1/rotations', '/v1/webhooks', '/healthz/', '//v1/environments'),
    fc.constantFrom('?limit=1', '?limit=1000', '?limit=1001', '?limit=0', '?limit=-1', '?limit=1e3', '?limit=abc', '?limit=1&limit=2', '?other=1').map((query) => `/v1/findings${query}`),
    environmentSegment.map((environment) => `/v1/environments/${environment}`),
    environmentSegment.map((environment) => `/v1/environments/${environment}/dependencies`),
    fc.tuple(environmentSegment, fileName).map(([environment, file]) => `/v1/environments/${environment}/dependencies/${file}`),
    runId.map((id) => `/v1/rotations/${id === 'known' ? (knownRunIds[0] ?? randomUUID()) : id}`),
  );
  return fc.record({
    method: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('GET' as const, 'DELETE' as const) }, { weight: 2, arbitrary: fc.constantFrom(...METHODS) }),
    path,
    query: queryString,
    auth: authMode,
    contentType,
    extra: extraHeaders,
    body: fc.option(rawBody, { nil: undefined }),
  }).map((generated) => ({
    method: generated.method,
    url: generated.path.includes('?') ? generated.path : `${generated.path}${generated.query}`,
    headers: {
      ...generated.extra,
      ...authorizationHeader(harness, generated.auth),
      ...(generated.contentType === undefined ? {} : { 'content-type': generated.contentType }),
    },
    payload: generated.method === 'GET' || generated.method === 'HEAD' ? undefined : generated.body,
  }));
}

/** A requirements line, some of them carrying the canary where pip files carry tokens. */
const requirementsLine: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('requests==2.31.0', 'leftpad-helper==0.3.1', 'django>=4', 'flask', 'numpy==1.*', 'x===1', '-r other.txt', '# comment', '', 'pkg==1.0 \\', '    --hash=sha256:abc'),
  fc.constantFrom(
    `-i https://user:${CANARY}@pypi.example/simple`,
    `--extra-index-url https://${CANARY}@pypi.example/simple`,
    `private @ https://user:${CANARY}@files.example/private-1.0.whl`,
    `git+https://${CANARY}:x-oauth-basic@github.com/acme/private.git#egg=private`,
    `private @ git+https://oauth2:${CANARY}@gitlab.example/acme/private.git`,
    `API_KEY=${CANARY}`,
    `token: ${CANARY}`,
    `# ${CANARY}`,
  ),
  printable(40),
);

const packageLock: fc.Arbitrary<string> = fc.record({
  lockfileVersion: mostly(fc.constantFrom(1, 2, 3)),
  packages: mostly(fc.dictionary(
    fc.oneof(fc.constantFrom('', 'node_modules/leftpad', 'node_modules/@acme/private', 'node_modules/a/node_modules/b'), fc.string({ maxLength: 12 })),
    mostly(fc.record({
      version: mostly(fc.constantFrom('1.0.0', `git+https://${CANARY}@github.com/acme/x.git#abc`, `https://user:${CANARY}@registry.example/x.tgz`, 'file:../x', '')),
      resolved: fc.constantFrom(`https://user:${CANARY}@registry.example/x/-/x-1.0.0.tgz`, 'https://registry.npmjs.org/x/-/x-1.0.0.tgz'),
      link: fc.boolean(),
    }, { requiredKeys: [] })),
    { maxKeys: 4 },
  )),
  dependencies: mostly(fc.dictionary(fc.string({ maxLength: 8 }), mostly(fc.record({
    version: mostly(fc.constantFrom('1.0.0', `git+https://${CANARY}@github.com/acme/x.git#abc`)),
    resolved: fc.constant(`https://user:${CANARY}@registry.example/x.tgz`),
  }, { requiredKeys: [] })), { maxKeys: 3 })),
}, { requiredKeys: [] }).map((document) => JSON.stringify(document));

const pnpmLock: fc.Arbitrary<string> = fc.tuple(
  fc.constantFrom("'9.0'", "'6.0'", '5.4', "'4.0'", 'banana', '[]'),
  fc.array(fc.constantFrom(
    'leftpad@1.0.0: {}',
    '/leftpad/1.0.0: {}',
    "'@acme/x@2.0.0(peer@1.0.0)': {}",
    `private@git+https://oauth2:${CANARY}@gitlab.example/acme/private.git#abc: {}`,
    `'private@https://user:${CANARY}@registry.example/private.tgz': {}`,
    `x@1.0.0: { resolution: { integrity: sha512-abc, tarball: 'https://user:${CANARY}@registry.example/x.tgz' } }`,
    'broken: [',
  ), { maxLength: 4 }),
).map(([version, packages]) => `lockfileVersion: ${version}\npackages:\n${packages.map((line) => `  ${line}`).join('\n')}\n`);

const poetryLock: fc.Arbitrary<string> = fc.array(fc.constantFrom(
  '[[package]]\nname = "requests"\nversion = "2.31.0"\n',
  `[[package]]\nname = "private"\nversion = "1.0"\n[package.source]\ntype = "legacy"\nurl = "https://user:${CANARY}@pypi.example/simple"\n`,
  '[[package]]\nname = "noversion"\n',
  `password = "${CANARY}\n`,
  'package = 3\n',
), { maxLength: 3 }).map((parts) => parts.join('\n'));

const dependencyBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.array(requirementsLine, { maxLength: 8 }), fc.constantFrom('\n', '\r\n')).map(([lines, separator]) => lines.join(separator)) },
  { weight: 2, arbitrary: packageLock },
  { weight: 2, arbitrary: pnpmLock },
  { weight: 2, arbitrary: poetryLock },
  { weight: 2, arbitrary: rawBody },
);

function dependencyRequests(harness: Harness): fc.Arbitrary<GeneratedRequest> {
  const query = fc.oneof(
    fc.constantFrom('?file=requirements.txt', '?file=package-lock.json', '?file=poetry.lock', '?file=pnpm-lock.yaml', '?file=dev-requirements.txt', '?file=npm-shrinkwrap.json'),
    fc.constantFrom('?format=requirements', '?format=package-lock', '?format=poetry-lock', '?format=pnpm-lock', '?file=x.lock&format=requirements'),
    fc.constantFrom('', '?file=', '?file=../etc/passwd', '?file=a%2Fb', '?format=toString', '?format=__proto__', '?file=x.txt', '?file=a&file=b', '?extra=1'),
    queryString,
  );
  return fc.record({
    method: fc.oneof({ weight: 8, arbitrary: fc.constant('PUT' as const) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
    environment: environmentSegment,
    query,
    auth: authMode,
    contentType: fc.oneof(contentType, fc.constantFrom('text/plain', 'application/yaml', 'application/toml')),
    extra: extraHeaders,
    body: dependencyBody,
  }).map((generated) => ({
    method: generated.method,
    url: `/v1/environments/${generated.environment}/dependencies${generated.query}`,
    headers: {
      ...generated.extra,
      ...authorizationHeader(harness, generated.auth),
      ...(generated.contentType === undefined ? {} : { 'content-type': generated.contentType }),
    },
    payload: generated.method === 'GET' || generated.method === 'HEAD' ? undefined : generated.body,
  }));
}

const osvVersion = fc.constantFrom('0', '1.0.0', '0.3.1', '2.31.0', 'not a version', '', '1.0.0-rc.1', '01.2');
const advisoryBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      id: fc.constantFrom('MAL-2026-0001', 'MAL-2026-0002', 'GHSA-xxxx-yyyy-zzzz'),
      modified: fc.constantFrom('2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z'),
      summary: fc.constant(`leaked ${CANARY}`),
      details: fc.constant(`token=${CANARY}`),
      affected: fc.array(fc.oneof(
        fc.constant({ package: { ecosystem: 'PyPI', name: 'requests' }, versions: ['2.31.0'] }),
        fc.constant({ package: { ecosystem: 'npm', name: 'leftpad' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '2.0.0' }] }] }),
        fc.constant({ package: { ecosystem: 'Go', name: 'example.com/x' }, versions: ['1.0.0'] }),
      ), { minLength: 1, maxLength: 3 }),
    }).map((document) => JSON.stringify(document)),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      id: mostly(fc.constantFrom('MAL-2026-0001', 'GHSA-xxxx-yyyy-zzzz', '', 'MAL-2026-0002')),
      modified: mostly(fc.constantFrom('2026-12-01T00:00:00Z', 'yesterday', '')),
      withdrawn: fc.constantFrom('2026-12-02T00:00:00Z', 'soon'),
      summary: fc.constant(`leaked ${CANARY}`),
      details: fc.constant(`token=${CANARY}`),
      database_specific: fc.constant({ token: CANARY }),
      affected: mostly(fc.array(mostly(fc.record({
        package: mostly(fc.record({
          ecosystem: mostly(fc.constantFrom('npm', 'PyPI', 'Go', 'pypi', '')),
          name: mostly(fc.constantFrom('requests', 'leftpad-helper', 'leftpad', '@acme/x', '')),
          purl: fc.constant(`pkg:npm/x?token=${CANARY}`),
        }, { requiredKeys: [] })),
        versions: mostly(fc.array(osvVersion, { maxLength: 3 })),
        ranges: mostly(fc.array(mostly(fc.record({
          type: mostly(fc.constantFrom('ECOSYSTEM', 'SEMVER', 'GIT', 'OTHER')),
          repo: fc.constant(`https://user:${CANARY}@git.example/x.git`),
          events: mostly(fc.array(mostly(fc.oneof(
            osvVersion.map((version) => ({ introduced: version })),
            osvVersion.map((version) => ({ fixed: version })),
            osvVersion.map((version) => ({ last_affected: version })),
            fc.constant({ introduced: '0', fixed: '1.0.0' }),
            fc.constant({}),
          )), { maxLength: 3 })),
        }, { requiredKeys: ['events'] })), { maxLength: 2 })),
      }, { requiredKeys: [] })), { maxLength: 3 })),
    }, { requiredKeys: [] }).map((document) => JSON.stringify(document)),
  },
  { weight: 2, arbitrary: rawBody },
);

function advisoryRequests(harness: Harness): fc.Arbitrary<GeneratedRequest> {
  return fc.record({
    method: fc.oneof({ weight: 8, arbitrary: fc.constant('POST' as const) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
    query: fc.oneof(fc.constantFrom('?dryRun=true', '?dryRun=false', '', '?dryRun=TRUE', '?dryRun=1', '?dryRun=true&dryRun=false', '?x=1'), queryString),
    auth: authMode,
    contentType,
    extra: extraHeaders,
    body: advisoryBody,
  }).map((generated) => ({
    method: generated.method,
    url: `/v1/advisories${generated.query}`,
    headers: {
      ...generated.extra,
      ...authorizationHeader(harness, generated.auth),
      ...(generated.contentType === undefined ? {} : { 'content-type': generated.contentType }),
    },
    payload: generated.method === 'GET' || generated.method === 'HEAD' ? undefined : generated.body,
  }));
}

type SignatureMode = 'valid' | 'missing' | 'wrong-secret' | 'other-body' | 'upper-case' | 'bare-hex' | 'canary' | 'garbage' | 'sha1';
const signatureMode: fc.Arbitrary<SignatureMode> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<SignatureMode>('valid') },
  { weight: 4, arbitrary: fc.constantFrom<SignatureMode>('missing', 'wrong-secret', 'other-body', 'upper-case', 'bare-hex', 'canary', 'garbage', 'sha1') },
);

function signatureHeader(mode: SignatureMode, body: Buffer, sign: (bytes: Buffer, key: string) => string, key: string): string | undefined {
  switch (mode) {
    case 'valid': return sign(body, key);
    case 'missing': return undefined;
    case 'wrong-secret': return sign(body, `${key}x`);
    case 'other-body': return sign(Buffer.concat([body, Buffer.from(' ')]), key);
    case 'upper-case': return sign(body, key).toUpperCase();
    case 'bare-hex': return sign(body, key).slice('sha256='.length);
    case 'canary': return `sha256=${CANARY}`;
    case 'garbage': return `sha256=${'z'.repeat(64)}`;
    case 'sha1': return `sha1=${sign(body, key).slice('sha256='.length, 'sha256='.length + 40)}`;
  }
}

const secretValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(CANARY, `AKIAABCDEFGHIJKLMNOP${CANARY.slice(0, 40)}`, `AKIAABCDEFGHIJKLMNOP:${CANARY.slice(0, 40)}`, `${CANARY}\n`, ` ${CANARY}`) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
);

const githubAlertBody = fc.record({
  action: mostly(fc.constantFrom('created', 'reopened', 'publicly_leaked', 'validated', 'resolved', 'unknown_action')),
  alert: mostly(fc.record({
    number: mostly(fc.oneof(fc.integer({ min: 1, max: 10_000 }), fc.constantFrom(0, -1, 1.5, 2 ** 53))),
    created_at: mostly(fc.constantFrom('2026-12-04T12:00:00Z', new Date().toISOString(), 'yesterday', '')),
    secret_type: mostly(fc.constantFrom('generic', 'aws_access_key_id')),
    validity: mostly(fc.constantFrom('active', 'inactive', 'unknown', 'maybe')),
    secret: secretValue,
  }, { requiredKeys: [] })),
  repository: mostly(fc.record({ name: mostly(fc.constantFrom('app', '')), owner: mostly(fc.record({ login: mostly(fc.constantFrom('acme', '')) })) }, { requiredKeys: [] })),
  hook_id: mostly(fc.integer({ min: 1, max: 1000 })),
  zen: fc.constant('Keep it logically awesome.'),
}, { requiredKeys: [] });

const gitguardianBody = fc.oneof(
  fc.record({
    source: fc.constant('GitGuardian'),
    timestamp: mostly(fc.constantFrom('2026-12-04T12:00:00Z', 'now')),
    action: mostly(fc.constantFrom('incident_triggered', 'new_occurrence', '')),
    incident: mostly(fc.record({
      id: mostly(fc.integer({ min: 1, max: 1000 })),
      date: mostly(fc.constantFrom('2026-12-04T12:00:00Z', '')),
      detector: mostly(fc.record({ name: mostly(fc.constantFrom('generic_high_entropy_secret', '')), display_name: fc.constant('Generic') }, { requiredKeys: [] })),
      secret_hash: fc.constant(CANARY),
      hmsl_hash: fc.constant(CANARY),
      secret_revoked: mostly(fc.boolean()),
    }, { requiredKeys: [] })),
    occurrence: mostly(fc.record({ id: mostly(fc.integer({ min: 1, max: 9 })), url: fc.constant(`https://user:${CANARY}@git.example/x`) }, { requiredKeys: [] })),
  }, { requiredKeys: [] }),
  fc.record({
    type: mostly(fc.constantFrom('Welcome Message Token', '')),
    gitguardian_link: fc.constant('https://dashboard.gitguardian.com/workspace/1/incidents/1'),
    matches: mostly(fc.array(mostly(fc.record({ type: fc.constant('client_secret'), match: secretValue }, { requiredKeys: [] })), { maxLength: 3 })),
  }, { requiredKeys: [] }),
);

const truffleHogFinding = fc.record({
  SourceName: mostly(fc.constantFrom('trufflehog - git', '')),
  DetectorType: mostly(fc.constantFrom(0, 2, 17, -1, 1.5)),
  DetectorName: mostly(fc.constantFrom('AWS', 'Generic', '')),
  Verified: mostly(fc.boolean()),
  Raw: secretValue,
  RawV2: secretValue,
  Redacted: fc.constant('AKIAABCDEFGHIJKLMNOP'),
  ExtraData: fc.constant({ token: CANARY }),
}, { requiredKeys: [] });

type WebhookRoute = 'github' | 'gitguardian' | 'trufflehog';

interface WebhookGenerated {
  route: WebhookRoute;
  method: (typeof METHODS)[number];
  query: string;
  encoding: 'json' | 'form' | 'ndjson' | 'array' | 'raw';
  document: unknown;
  raw: string | Buffer;
  contentType: string | undefined;
  signature: SignatureMode;
  event: string | undefined;
  delivery: string | undefined;
  timestamp: 'now' | 'stale' | 'future' | 'missing' | 'fraction' | 'garbage';
  auth: AuthMode;
  extra: Record<string, string>;
}

function encodeWebhookBody(generated: WebhookGenerated): Buffer {
  const documents = Array.isArray(generated.document) ? generated.document : [generated.document];
  switch (generated.encoding) {
    case 'json': return Buffer.from(JSON.stringify(generated.document) ?? '');
    case 'form': return Buffer.from(new URLSearchParams({ payload: JSON.stringify(generated.document) ?? '' }).toString());
    case 'ndjson': return Buffer.from(documents.map((document) => JSON.stringify(document)).join('\n'));
    case 'array': return Buffer.from(JSON.stringify(documents));
    case 'raw': return Buffer.isBuffer(generated.raw) ? generated.raw : Buffer.from(generated.raw);
  }
}

function timestampHeader(mode: WebhookGenerated['timestamp']): string | undefined {
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'now': return String(now);
    case 'stale': return String(now - 3600);
    case 'future': return String(now + 3600);
    case 'missing': return undefined;
    case 'fraction': return `${now}.5`;
    case 'garbage': return `${now}abc`;
  }
}

function webhookRequests(harness: Harness): fc.Arbitrary<GeneratedRequest> {
  const route = fc.constantFrom<WebhookRoute>('github', 'gitguardian', 'trufflehog');
  const generated: fc.Arbitrary<WebhookGenerated> = route.chain((name) => fc.record({
    route: fc.constant(name),
    method: fc.oneof({ weight: 10, arbitrary: fc.constant('POST' as const) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
    query: fc.oneof({ weight: 6, arbitrary: fc.constant('') }, { weight: 1, arbitrary: queryString }),
    encoding: fc.oneof(
      { weight: 6, arbitrary: fc.constant<WebhookGenerated['encoding']>('json') },
      { weight: 2, arbitrary: fc.constantFrom<WebhookGenerated['encoding']>(name === 'github' ? 'form' : 'json', name === 'trufflehog' ? 'ndjson' : 'json', name === 'trufflehog' ? 'array' : 'json') },
      { weight: 2, arbitrary: fc.constant<WebhookGenerated['encoding']>('raw') },
    ),
    document: name === 'github'
      ? githubAlertBody
      : name === 'gitguardian' ? gitguardianBody : fc.oneof(truffleHogFinding, fc.array(truffleHogFinding, { maxLength: 3 })),
    raw: rawBody,
    contentType: fc.oneof(contentType, fc.constant(name === 'github' ? 'application/x-www-form-urlencoded' : 'application/x-ndjson')),
    signature: signatureMode,
    event: fc.oneof({ weight: 6, arbitrary: fc.constant('secret_scanning_alert') }, { weight: 2, arbitrary: fc.constantFrom('ping', 'push', '', undefined) }, { weight: 1, arbitrary: printable(20) }),
    delivery: fc.oneof({ weight: 6, arbitrary: fc.uuid() }, { weight: 1, arbitrary: fc.constantFrom(undefined, '', 'fixed-delivery') }),
    timestamp: fc.oneof({ weight: 6, arbitrary: fc.constant<WebhookGenerated['timestamp']>('now') }, { weight: 2, arbitrary: fc.constantFrom<WebhookGenerated['timestamp']>('stale', 'future', 'missing', 'fraction', 'garbage') }),
    auth: authMode,
    extra: extraHeaders,
  }));

  return generated.map((request) => {
    const body = encodeWebhookBody(request);
    const headers: Record<string, string> = { ...request.extra, ...authorizationHeader(harness, request.auth) };
    if (request.contentType !== undefined) headers['content-type'] = request.contentType;

    if (request.route === 'github') {
      const signature = signatureHeader(request.signature, body, signGithub, GITHUB_SECRET);
      if (signature !== undefined) headers['x-hub-signature-256'] = signature;
      if (request.event !== undefined) headers['x-github-event'] = request.event;
      if (request.delivery !== undefined) headers['x-github-delivery'] = request.delivery;
    } else if (request.route === 'trufflehog') {
      const signature = signatureHeader(request.signature, body, signHmacSha256, TRUFFLEHOG_SECRET);
      if (signature !== undefined) headers['x-rekey-signature-256'] = signature;
    } else {
      const timestamp = timestampHeader(request.timestamp);
      const sign = (bytes: Buffer, key: string): string => signGitGuardian(bytes, key, timestamp ?? '');
      const signature = signatureHeader(request.signature, body, sign, GITGUARDIAN_TOKEN);
      if (timestamp !== undefined) headers.timestamp = timestamp;
      if (signature !== undefined) headers['gitguardian-signature'] = signature;
    }

    return {
      method: request.method,
      url: `/v1/webhooks/${request.route}${request.query}`,
      headers,
      payload: request.method === 'GET' || request.method === 'HEAD' ? undefined : body,
    };
  });
}

/** fastify's router limit (`maxParamLength`, default 100 characters), which the API leaves as is. */
const MAX_PARAM_LENGTH = 100;

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/** Reads every key under the harness's prefix (run records, queue, findings, uploads, deliveries) as text. */
async function snapshotState(harness: Harness): Promise<StateSnapshot> {
  const redis = harness.runtime.redis;
  const keys = (await redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:*`)).sort();
  const types = await Promise.all(keys.map((key) => redis.type(key)));
  const values = await Promise.all(keys.map(async (key, index): Promise<string> => {
    switch (types[index]) {
      case 'string': return `string:${await redis.get(key) ?? ''}`;
      case 'hash': return `hash:${JSON.stringify(Object.entries(await redis.hgetall(key)).sort())}`;
      case 'list': return `list:${JSON.stringify(await redis.lrange(key, 0, -1))}`;
      case 'set': return `set:${JSON.stringify((await redis.smembers(key)).sort())}`;
      case 'zset': return `zset:${JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES'))}`;
      case 'stream': return `stream:${await redis.xlen(key)}`;
      default: return `${types[index] ?? 'none'}`;
    }
  }));
  const redisState = new Map(keys.map((key, index) => [key, values[index] ?? '']));
  redisState.set('(queue job counts)', JSON.stringify(await harness.runtime.queue.getJobCounts()));

  let auditBytes = 0;
  try {
    auditBytes = statSync(harness.env.REKEY_AUDIT_FILE!).size;
  } catch {
    // No audit file yet: the worker-less harness never opens one, and nothing may create it.
  }
  return { redis: redisState, auditBytes };
}

/** Lists the keys a request added, removed or changed. */
function describeChanges(before: StateSnapshot, after: StateSnapshot): string[] {
  const changes: string[] = [];
  for (const [key, value] of after.redis) {
    if (!before.redis.has(key)) changes.push(`added ${key}`);
    else if (before.redis.get(key) !== value) changes.push(`changed ${key}`);
  }
  for (const key of before.redis.keys()) {
    if (!after.redis.has(key)) changes.push(`removed ${key}`);
  }
  if (before.auditBytes !== after.auditBytes) changes.push(`audit file grew from ${before.auditBytes} to ${after.auditBytes} bytes`);
  return changes;
}

function describeRequest(request: GeneratedRequest): string {
  const payload = request.payload === undefined ? '' : ` body=${JSON.stringify(request.payload.toString().slice(0, 300))}`;
  return `${request.method} ${request.url} headers=${JSON.stringify(request.headers)}${payload}`;
}

/**
 * Sends one request and checks every property. The state snapshot is refreshed after every
 * accepted request, so each rejected request is compared with the state just before it.
 */
async function sendAndCheck(harness: Harness, state: { snapshot: StateSnapshot }, request: GeneratedRequest): Promise<void> {
  const logStart = harness.logs.length;
  const options: InjectOptions = { method: request.method, url: request.url, headers: request.headers };
  if (request.payload !== undefined) options.payload = request.payload;
  const response: LightMyRequestResponse = await harness.app.inject(options);
  const tallyKey = `${request.url.split('?')[0]?.split('/').slice(0, 3).join('/') ?? ''} ${response.statusCode}`;
  statusTally.set(tallyKey, (statusTally.get(tallyKey) ?? 0) + 1);
  const context = `${describeRequest(request)} -> ${response.statusCode} ${response.body.slice(0, 500)}`;

  expect(response.statusCode, `5xx: ${context}`).toBeLessThan(500);

  if (response.statusCode >= 400) {
    expect(String(response.headers['content-type']), `content type: ${context}`).toMatch(/^application\/problem\+json/);
    if (request.method !== 'HEAD') {
      const problem = JSON.parse(response.body) as { status?: unknown; code?: unknown; detail?: unknown };
      expect(problem.status, `problem status: ${context}`).toBe(response.statusCode);
      expect(typeof problem.code, `problem code type: ${context}`).toBe('string');
      expect(problem.code, `problem code: ${context}`).not.toBe('');
      expect(typeof problem.detail, `problem detail type: ${context}`).toBe('string');
      expect(String(problem.detail).trim(), `problem detail: ${context}`).not.toBe('');
    }
    const after = await snapshotState(harness);
    const changes = describeChanges(state.snapshot, after);
    // Refreshed before the check, so the runs fast-check makes while shrinking compare with the current state.
    state.snapshot = after;
    expect(changes, `state changed by a rejected request (${changes.join(', ')}): ${context}`).toEqual([]);
  } else {
    if (request.method === 'POST' && response.statusCode === 202) {
      const runId = (JSON.parse(response.body) as { runId?: unknown }).runId;
      if (typeof runId === 'string') knownRunIds.unshift(runId);
    }
    state.snapshot = await snapshotState(harness);
  }

  expect(response.body.includes(CANARY_NEEDLE), `canary in response body: ${context}`).toBe(false);
  expect(JSON.stringify(response.headers).includes(CANARY_NEEDLE), `canary in response headers: ${context}`).toBe(false);
  const leakedLines = harness.logs.slice(logStart).filter((line) => line.includes(CANARY_NEEDLE));
  expect(leakedLines, `canary in log lines: ${context}`).toEqual([]);
}

function runOptions(numRuns: number): fc.Parameters<[GeneratedRequest]> {
  return { numRuns, seed: SEED, ...(PATH === undefined ? {} : { path: PATH, endOnFailure: true }) };
}

describe('API properties', () => {
  let harness: Harness;
  const state: { snapshot: StateSnapshot } = { snapshot: { redis: new Map(), auditBytes: 0 } };

  beforeAll(async () => {
    harness = await startHarness({
      inventory: INVENTORY,
      worker: false,
      env: {
        REKEY_GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
        REKEY_TRUFFLEHOG_WEBHOOK_SECRET: TRUFFLEHOG_SECRET,
        REKEY_GITGUARDIAN_WEBHOOK_TOKEN: GITGUARDIAN_TOKEN,
      },
    });
    // BullMQ writes the queue's meta key once its connection is ready, not during a request.
    await harness.runtime.queue.waitUntilReady();
    const metaKey = `${harness.env.REKEY_REDIS_PREFIX}:${harness.env.REKEY_QUEUE}:meta`;
    for (let attempt = 0; attempt < 50 && (await harness.runtime.redis.exists(metaKey)) === 0; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    state.snapshot = await snapshotState(harness);
    console.info(`api-properties: fast-check seed ${SEED} (rerun with FC_SEED=${SEED})`);
  });

  afterAll(async () => {
    console.info(`api-properties: responses by path prefix and status: ${JSON.stringify(Object.fromEntries([...statusTally].sort()))}`);
    await harness?.close();
  });

  // The webhook group covers three routes, so it gets three times the runs.
  const groups: Array<[string, (harness: Harness) => fc.Arbitrary<GeneratedRequest>, number]> = [
    ['rotation submissions', rotationRequests, RUNS_PER_GROUP],
    ['read and delete routes', readRequests, RUNS_PER_GROUP],
    ['dependency uploads', dependencyRequests, RUNS_PER_GROUP],
    ['advisories', advisoryRequests, RUNS_PER_GROUP],
    ['scanner webhooks', webhookRequests, 3 * RUNS_PER_GROUP],
  ];

  for (const [name, requests, numRuns] of groups) {
    it(`holds for generated ${name}`, async () => {
      await fc.assert(fc.asyncProperty(requests(harness), (request) => sendAndCheck(harness, state, request)), runOptions(numRuns));
    });
  }

  // Request classes that broke a property once, each checked on its own.
  const regressions: Array<[string, (harness: Harness) => fc.Arbitrary<GeneratedRequest>]> = [
    ['a long path parameter gets a 414 problem', (target) => fc.record({
      parameter: fc.stringMatching(new RegExp(`^[a-z]{${MAX_PARAM_LENGTH + 1},${2 * MAX_PARAM_LENGTH}}$`)),
      route: fc.constantFrom('/v1/environments/{}', '/v1/environments/{}/dependencies', '/v1/rotations/{}'),
    }).map(({ parameter, route }) => ({ method: 'GET' as const, url: route.replace('{}', parameter), headers: target.auth }))],
    ['an empty body without content type gets a 4xx', (target) => fc.constantFrom<GeneratedRequest>(
      { method: 'POST', url: '/v1/webhooks/github', headers: { 'x-hub-signature-256': signGithub(Buffer.alloc(0), GITHUB_SECRET), 'x-github-event': 'ping', 'x-github-delivery': randomUUID() }, payload: '' },
      { method: 'POST', url: '/v1/webhooks/trufflehog', headers: { 'x-rekey-signature-256': signHmacSha256(Buffer.alloc(0), TRUFFLEHOG_SECRET) }, payload: '' },
      { method: 'PUT', url: '/v1/environments/demo/dependencies?file=requirements.txt', headers: target.auth, payload: '' },
    )],
    ['a lockfile upload hides URL credentials', (target) => fc.constantFrom(
      ['pnpm-lock.yaml', `lockfileVersion: '9.0'\npackages:\n  private@git+https://oauth2:${CANARY}@gitlab.example/acme/private.git#abc: {}\n`],
      ['pnpm-lock.yaml', `lockfileVersion: '9.0'\npackages:\n  'private@https://user:${CANARY}@registry.example/private.tgz': {}\n`],
      ['package-lock.json', JSON.stringify({ lockfileVersion: 1, dependencies: { private: { version: `git+https://${CANARY}@github.com/acme/private.git#abc` } } })],
    ).map(([file, payload]): GeneratedRequest => ({
      method: 'PUT',
      url: `/v1/environments/demo/dependencies?file=${file}`,
      headers: { ...target.auth, 'content-type': 'text/plain' },
      payload,
    }))],
  ];

  for (const [name, requests] of regressions) {
    it(`holds when ${name}`, async () => {
      await fc.assert(fc.asyncProperty(requests(harness), (request) => sendAndCheck(harness, state, request)), { numRuns: 10, seed: SEED });
    });
  }
});
