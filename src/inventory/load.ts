import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { INVENTORY_SCHEMA, parseDuration, type CredentialEntry, type EnvironmentEntry, type Inventory } from './schema.js';

/** The grace period in scheduled mode when a credential sets none. */
export const DEFAULT_GRACE_PERIOD = '1h';
/** Shortest interval of a credential's own rotation schedule. */
export const MIN_ROTATE_EVERY_MS = 10_000;

/** Schema lookup of provider and store kinds, by kind name. */
export interface KindCatalogue {
  providerSchema(kind: string): Record<string, unknown> | undefined;
  storeSchema(kind: string): Record<string, unknown> | undefined;
}

export interface InventoryProblem {
  file: string;
  line: number;
  /** The path of the offending key, for example `environments.prod.credentials[0].params.userName`. */
  key: string;
  message: string;
}

export class InventoryError extends Error {
  readonly problems: InventoryProblem[];

  constructor(unsorted: InventoryProblem[]) {
    const problems = [...unsorted].sort((a, b) => a.line - b.line);
    super(`invalid inventory:\n${problems.map((p) => `  ${p.file}:${p.line}: ${p.key}: ${p.message}`).join('\n')}`);
    this.name = 'InventoryError';
    this.problems = problems;
  }
}

type PathSegment = string | number;

function formatPath(path: readonly PathSegment[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (text === '') text = segment;
    else text += `.${segment}`;
  }
  return text === '' ? '(top level)' : text;
}

/** Splits an Ajv instance path (`/environments/prod/credentials/0`) into segments. */
function splitPointer(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((raw) => {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^[0-9]+$/.test(segment) ? Number(segment) : segment;
  });
}

/**
 * Finds the line of the deepest node along `path` that exists in the document. For a map entry
 * it is the line of the key, which is where an operator looks for an unknown or misspelled key.
 */
function lineOf(document: Document, lines: LineCounter, path: readonly PathSegment[]): number {
  for (let depth = path.length; depth >= 0; depth -= 1) {
    const parent = depth === 0 ? undefined : document.getIn(path.slice(0, depth - 1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === String(path[depth - 1]));
      const range = isScalar(pair?.key) ? pair.key.range : undefined;
      if (range !== undefined && range !== null) return lines.linePos(range[0]).line;
    }
    const node = document.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
    if (node?.range !== undefined) return lines.linePos(node.range[0]).line;
  }
  return 1;
}

function describeAjvError(error: ErrorObject): { path: PathSegment[]; message: string } {
  const path = splitPointer(error.instancePath);
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') {
    return { path: [...path, String(params.additionalProperty)], message: 'unknown key' };
  }
  if (error.keyword === 'required') {
    return { path: [...path, String(params.missingProperty)], message: 'missing required key' };
  }
  if (error.keyword === 'pattern' && (path.at(-1) === 'gracePeriod' || path.at(-1) === 'rotateEvery')) {
    return { path, message: 'invalid duration: use whole seconds or a number with s, m, h or d, such as 90, 90s, 15m, 2h or 7d' };
  }
  if (error.keyword === 'propertyNames') {
    return { path: [...path, String(params.propertyName)], message: 'invalid name: use lower-case letters, digits, ".", "_" and "-"' };
  }
  return { path, message: error.message ?? error.keyword };
}

/**
 * Parses and validates an inventory. Every problem is collected before throwing, so an operator
 * fixes the whole file in one pass: YAML syntax, the file's structure, each credential's provider
 * parameters and each store target, duplicate credential ids.
 */
/**
 * Turns a duration written as a bare number (`gracePeriod: 90`), which YAML reads as a number,
 * into the string of seconds the schema expects. Anything else is left for the schema to report.
 */
function acceptPlainSeconds(data: unknown): void {
  const environments = (data as { environments?: unknown } | null)?.environments;
  if (typeof environments !== 'object' || environments === null) return;
  for (const environment of Object.values(environments)) {
    const credentials = (environment as { credentials?: unknown } | null)?.credentials;
    if (!Array.isArray(credentials)) continue;
    for (const credential of credentials) {
      if (typeof credential !== 'object' || credential === null) continue;
      const fields = credential as Record<string, unknown>;
      for (const name of ['gracePeriod', 'rotateEvery']) {
        const value = fields[name];
        if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) fields[name] = String(value);
      }
    }
  }
}

export function parseInventory(text: string, file: string, kinds: KindCatalogue): Inventory {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const problems: InventoryProblem[] = [];
  const report = (path: readonly PathSegment[], message: string): void => {
    problems.push({ file, line: lineOf(document, lines, path), key: formatPath(path), message });
  };

  for (const error of document.errors) {
    const line = lines.linePos(error.pos[0]).line;
    problems.push({ file, line, key: '(syntax)', message: error.message.split('\n')[0] ?? error.code });
  }
  if (problems.length > 0) throw new InventoryError(problems);

  const data: unknown = document.toJS();
  acceptPlainSeconds(data);
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validateStructure = ajv.compile(INVENTORY_SCHEMA);
  if (!validateStructure(data)) {
    for (const error of validateStructure.errors ?? []) {
      // A failed propertyNames check comes as two errors; the propertyNames one names the key.
      if (error.propertyName !== undefined) continue;
      const described = describeAjvError(error);
      report(described.path, described.message);
    }
    throw new InventoryError(problems);
  }

  const environments = new Map<string, EnvironmentEntry>();
  const raw = data as { environments: Record<string, { description?: string; dependencies?: string[]; credentials: RawCredential[] }> };
  for (const [name, rawEnvironment] of Object.entries(raw.environments)) {
    const seen = new Set<string>();
    const credentials: CredentialEntry[] = [];
    rawEnvironment.credentials.forEach((credential, index) => {
      const base: PathSegment[] = ['environments', name, 'credentials', index];
      if (seen.has(credential.id)) report([...base, 'id'], `duplicate credential id "${credential.id}"`);
      seen.add(credential.id);
      const entry = checkCredential(credential, base, ajv, kinds, report);
      if (entry !== undefined) credentials.push(entry);
    });
    environments.set(name, { name, description: rawEnvironment.description, dependencies: rawEnvironment.dependencies, credentials });
  }
  if (problems.length > 0) throw new InventoryError(problems);
  return { source: file, environments };
}

interface RawCredential {
  id: string;
  kind: string;
  description?: string;
  params?: Record<string, unknown>;
  gracePeriod?: string;
  rotateEvery?: string;
  stores: Array<Record<string, unknown> & { store: string }>;
}

function checkCredential(
  credential: RawCredential,
  base: PathSegment[],
  ajv: Ajv,
  kinds: KindCatalogue,
  report: (path: readonly PathSegment[], message: string) => void,
): CredentialEntry | undefined {
  let valid = true;
  const providerSchema = kinds.providerSchema(credential.kind);
  if (providerSchema === undefined) {
    report([...base, 'kind'], `unknown credential kind "${credential.kind}"`);
    valid = false;
  } else {
    valid = checkAgainst(ajv, providerSchema, credential.params ?? {}, [...base, 'params'], report) && valid;
  }

  const stores = credential.stores.map((target, index) => {
    const { store, ...params } = target;
    const path = [...base, 'stores', index];
    const storeSchema = kinds.storeSchema(store);
    if (storeSchema === undefined) {
      report([...path, 'store'], `unknown store kind "${store}"`);
      valid = false;
    } else {
      valid = checkAgainst(ajv, storeSchema, params, path, report) && valid;
    }
    return { store, params };
  });

  const rotateEveryMs = credential.rotateEvery === undefined ? undefined : parseDuration(credential.rotateEvery);
  const gracePeriodMs = parseDuration(credential.gracePeriod ?? DEFAULT_GRACE_PERIOD);
  if (rotateEveryMs !== undefined && rotateEveryMs < MIN_ROTATE_EVERY_MS) {
    report([...base, 'rotateEvery'], `rotateEvery must be at least ${MIN_ROTATE_EVERY_MS / 1000}s`);
    valid = false;
  } else if (rotateEveryMs !== undefined && rotateEveryMs <= gracePeriodMs) {
    // A scheduled rotation keeps the old key until the grace period ends. A tick before that
    // would find it still there, and at a two-key limit (AWS) stop with KEY_QUOTA.
    const grace = credential.gracePeriod ?? `${DEFAULT_GRACE_PERIOD}, the default`;
    report([...base, 'rotateEvery'], `rotateEvery (${credential.rotateEvery}) must be longer than the gracePeriod (${grace}), or each tick finds the previous old key not yet revoked`);
    valid = false;
  }

  if (!valid) return undefined;
  return {
    id: credential.id,
    kind: credential.kind,
    description: credential.description,
    params: credential.params ?? {},
    gracePeriodMs,
    ...(rotateEveryMs === undefined ? {} : { rotateEveryMs }),
    stores,
  };
}

function checkAgainst(
  ajv: Ajv,
  schema: Record<string, unknown>,
  value: unknown,
  base: PathSegment[],
  report: (path: readonly PathSegment[], message: string) => void,
): boolean {
  const validate = ajv.compile(schema);
  if (validate(value)) return true;
  for (const error of validate.errors ?? []) {
    const described = describeAjvError(error);
    report([...base, ...described.path], described.message);
  }
  return false;
}

/** Reads, parses and validates the inventory file at `path`. */
export function loadInventory(path: string, kinds: KindCatalogue): Inventory {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new InventoryError([{ file: path, line: 1, key: '(file)', message: `cannot read the inventory: ${reason}; set REKEY_INVENTORY to its path` }]);
  }
  return parseInventory(text, path, kinds);
}
