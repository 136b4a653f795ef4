import { describe, expect, it } from 'vitest';
import { InventoryError, parseInventory, type KindCatalogue } from '../../src/inventory/load.js';
import { parseDuration } from '../../src/inventory/schema.js';

const KINDS: KindCatalogue = {
  providerSchema: (kind) => kind === 'aws-iam-access-key'
    ? { type: 'object', additionalProperties: false, required: ['userName'], properties: { userName: { type: 'string', minLength: 1 } } }
    : undefined,
  storeSchema: (kind) => kind === 'file'
    ? { type: 'object', additionalProperties: false, required: ['path'], properties: { path: { type: 'string' } } }
    : undefined,
};

function problemsOf(text: string): string[] {
  try {
    parseInventory(text, 'inventory.yaml', KINDS);
  } catch (error) {
    if (error instanceof InventoryError) return error.problems.map((p) => `${p.file}:${p.line}: ${p.key}: ${p.message}`);
    throw error;
  }
  return [];
}

describe('inventory loader', () => {
  it('loads a valid inventory', () => {
    const inventory = parseInventory(`
environments:
  prod:
    credentials:
      - id: ci-deployer
        kind: aws-iam-access-key
        params: { userName: ci-deployer }
        gracePeriod: 15m
        stores:
          - store: file
            path: prod/ci-deployer
`, 'inventory.yaml', KINDS);
    const credential = inventory.environments.get('prod')?.credentials[0];
    expect(credential).toEqual({
      id: 'ci-deployer', kind: 'aws-iam-access-key', description: undefined, params: { userName: 'ci-deployer' },
      gracePeriodMs: 900_000, stores: [{ store: 'file', params: { path: 'prod/ci-deployer' } }],
    });
  });

  it('lists every problem with its line and key', () => {
    const problems = problemsOf(`environments:
  prod:
    credentials:
      - id: ci-deployer
        kind: aws-iam-access-key
        params:
          user: ci-deployer
        stores:
          - store: file
            path: prod/ci-deployer
            colour: blue
      - id: ci-deployer
        kind: gcp-magic
        params: {}
        stores:
          - store: vault
`);
    expect(problems).toEqual([
      'inventory.yaml:6: environments.prod.credentials[0].params.userName: missing required key',
      'inventory.yaml:7: environments.prod.credentials[0].params.user: unknown key',
      'inventory.yaml:11: environments.prod.credentials[0].stores[0].colour: unknown key',
      'inventory.yaml:12: environments.prod.credentials[1].id: duplicate credential id "ci-deployer"',
      'inventory.yaml:13: environments.prod.credentials[1].kind: unknown credential kind "gcp-magic"',
      'inventory.yaml:16: environments.prod.credentials[1].stores[0].store: unknown store kind "vault"',
    ]);
  });

  it('reports structural errors before provider checks', () => {
    expect(problemsOf(`environments:
  Prod Env:
    credentials: []
`)).toEqual([
      'inventory.yaml:2: environments.Prod Env: invalid name: use lower-case letters, digits, ".", "_" and "-"',
      'inventory.yaml:3: environments.Prod Env.credentials: must NOT have fewer than 1 items',
    ]);
  });

  it('explains an invalid grace period', () => {
    expect(problemsOf(`environments:
  prod:
    credentials:
      - id: token
        kind: aws-iam-access-key
        params: { userName: deployer }
        gracePeriod: 1w
        stores: [{ store: file, path: prod/token }]
`)).toEqual([
      'inventory.yaml:7: environments.prod.credentials[0].gracePeriod: invalid duration: use whole seconds or a number with s, m, h or d, such as 90, 90s, 15m, 2h or 7d',
    ]);
  });

  it('rejects a rotation schedule under ten seconds', () => {
    expect(problemsOf(`environments:
  prod:
    credentials:
      - id: token
        kind: aws-iam-access-key
        params: { userName: deployer }
        rotateEvery: 5s
        stores: [{ store: file, path: prod/token }]
`)).toEqual(['inventory.yaml:7: environments.prod.credentials[0].rotateEvery: rotateEvery must be at least 10s']);
  });

  it('rejects a schedule within the grace period', () => {
    expect(problemsOf(`environments:
  prod:
    credentials:
      - id: token
        kind: aws-iam-access-key
        params: { userName: deployer }
        rotateEvery: 30m
        stores: [{ store: file, path: prod/token }]
`)).toEqual(['inventory.yaml:7: environments.prod.credentials[0].rotateEvery: rotateEvery (30m) must be longer than the gracePeriod (1h, the default), or each tick finds the previous old key not yet revoked']);
  });

  it('reads bare numbers as seconds', () => {
    const inventory = parseInventory(`environments:
  prod:
    credentials:
      - id: token
        kind: aws-iam-access-key
        params: { userName: deployer }
        gracePeriod: 90
        rotateEvery: 120
        stores: [{ store: file, path: prod/token }]
`, 'inventory.yaml', KINDS);
    expect(inventory.environments.get('prod')?.credentials[0]?.gracePeriodMs).toBe(90_000);
    expect(inventory.environments.get('prod')?.credentials[0]?.rotateEveryMs).toBe(120_000);
  });

  it('reads a rotation schedule', () => {
    const inventory = parseInventory(`environments:
  prod:
    credentials:
      - id: token
        kind: aws-iam-access-key
        params: { userName: deployer }
        rotateEvery: 30m
        gracePeriod: 10m
        stores: [{ store: file, path: prod/token }]
`, 'inventory.yaml', KINDS);
    expect(inventory.environments.get('prod')?.credentials[0]?.rotateEveryMs).toBe(1_800_000);
  });

  it('reports a YAML syntax error with its line', () => {
    const problems = problemsOf('environments:\n  prod:\n    credentials: [\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^inventory\.yaml:4: \(syntax\): /);
  });

  it('parses durations with units', () => {
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(() => parseDuration('1w')).toThrow('invalid duration "1w"');
  });
});

describe('shipped inventories', () => {
  it('validate against the built-in kinds', async () => {
    const { loadInventory } = await import('../../src/inventory/load.js');
    const { createRegistry } = await import('../../providers/registry.js');
    const registry = createRegistry({});
    const example = loadInventory('config/inventory.yaml', registry);
    expect(example.environments.get('ci')?.credentials.map((credential) => credential.kind)).toEqual([
      'aws-iam-access-key', 'postgres-role-password', 'redis-acl-password', 'vault-approle-secret-id', 'generated-secret',
      'gcp-service-account-key', 'gcp-access-token', 'azure-app-client-secret',
    ]);
    const demo = loadInventory('config/demo/inventory.yaml', registry);
    expect(demo.environments.get('demo')?.credentials.map((credential) => credential.id)).toEqual(['app-redis', 'api-token']);
  });
});
