import { RekeyError } from '../errors.js';
import { normalizePackageName } from './names.js';
import type { Ecosystem } from './types.js';
import { schemeOfRange } from './versions.js';

export type RangeType = 'SEMVER' | 'ECOSYSTEM' | 'GIT';
export type RangeEventKind = 'introduced' | 'fixed' | 'last_affected' | 'limit';

/** One event of an OSV range, such as `{"fixed": "1.2.3"}`. */
export interface RangeEvent {
  kind: RangeEventKind;
  version: string;
}

export interface AffectedRange {
  type: RangeType;
  /** The repository URL of a GIT range. */
  repo?: string;
  /** The events in document order. Evaluation sorts them. */
  events: RangeEvent[];
}

/** One `affected` entry of an ecosystem that rekey matches. */
export interface AffectedPackage {
  ecosystem: Ecosystem;
  /** The package name, normalised per PEP 503 for PyPI. */
  name: string;
  purl?: string;
  versions: string[];
  ranges: AffectedRange[];
  databaseSpecific?: Record<string, unknown>;
}

/** An `affected` entry that rekey cannot match, reported so that the caller can show it. */
export interface IgnoredPackage {
  /** The entry's position in the document, for example `affected[2]`. */
  path: string;
  ecosystem?: string;
  name?: string;
  reason: string;
}

/** A validated OSV advisory, reduced to what matching and reporting need. */
export interface Advisory {
  id: string;
  summary?: string;
  modified?: string;
  /** The time the advisory was withdrawn. Matching does not look at it, so callers decide. */
  withdrawn?: string;
  aliases: string[];
  affected: AffectedPackage[];
  ignored: IgnoredPackage[];
  databaseSpecific?: Record<string, unknown>;
}

const SUPPORTED_ECOSYSTEMS: ReadonlySet<string> = new Set<Ecosystem>(['npm', 'PyPI']);
const RANGE_TYPES: ReadonlySet<string> = new Set<RangeType>(['SEMVER', 'ECOSYSTEM', 'GIT']);
const EVENT_KINDS: readonly RangeEventKind[] = ['introduced', 'fixed', 'last_affected', 'limit'];

function invalid(path: string, problem: string): RekeyError {
  return new RekeyError('INVALID_PARAMETERS', `invalid OSV advisory: ${path} ${problem}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(value: unknown, path: string): string {
  if (value === undefined || value === null) throw invalid(path, 'is missing');
  if (typeof value !== 'string') throw invalid(path, `is not a string but ${describeType(value)}`);
  if (value === '') throw invalid(path, 'is empty');
  return value;
}

function optionalString(value: unknown, path: string): string | undefined {
  return value === undefined || value === null ? undefined : requireString(value, path);
}

function optionalObject(value: unknown, path: string): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw invalid(path, `is not an object but ${describeType(value)}`);
  return value;
}

function optionalArray(value: unknown, path: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(path, `is not an array but ${describeType(value)}`);
  return value;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * Validates an OSV document (schema 1.x) and returns its advisory. Entries of ecosystems other
 * than npm and PyPI, or without a package, are returned in `ignored` instead of failing. Throws
 * INVALID_PARAMETERS with the path of the offending field, such as `affected[0].package.name`.
 */
export function parseOsv(document: unknown): Advisory {
  if (!isRecord(document)) throw invalid('the document', `is not a JSON object but ${describeType(document)}`);

  const advisory: Advisory = {
    id: requireString(document.id, 'id'),
    aliases: optionalArray(document.aliases, 'aliases').map((alias, i) => requireString(alias, `aliases[${i}]`)),
    affected: [],
    ignored: [],
  };
  const summary = optionalString(document.summary, 'summary');
  if (summary !== undefined) advisory.summary = summary;
  const modified = optionalString(document.modified, 'modified');
  if (modified !== undefined) advisory.modified = modified;
  const withdrawn = optionalString(document.withdrawn, 'withdrawn');
  if (withdrawn !== undefined) advisory.withdrawn = withdrawn;
  const databaseSpecific = optionalObject(document.database_specific, 'database_specific');
  if (databaseSpecific !== undefined) advisory.databaseSpecific = databaseSpecific;

  if (document.affected === undefined || document.affected === null) throw invalid('affected', 'is missing');
  optionalArray(document.affected, 'affected').forEach((entry, index) => {
    const result = parseAffected(entry, `affected[${index}]`);
    if ('reason' in result) advisory.ignored.push(result);
    else advisory.affected.push(result);
  });
  return advisory;
}

function parseAffected(entry: unknown, path: string): AffectedPackage | IgnoredPackage {
  if (!isRecord(entry)) throw invalid(path, `is not an object but ${describeType(entry)}`);

  // OSV allows an entry without a package when GIT ranges alone describe it.
  const packageObject = optionalObject(entry.package, `${path}.package`);
  if (packageObject === undefined) return { path, reason: 'the entry names no package' };
  const ecosystem = requireString(packageObject.ecosystem, `${path}.package.ecosystem`);
  const name = requireString(packageObject.name, `${path}.package.name`);
  if (!SUPPORTED_ECOSYSTEMS.has(ecosystem)) {
    return { path, ecosystem, name, reason: `ecosystem "${ecosystem}" is not supported, only npm and PyPI are` };
  }

  const knownEcosystem = ecosystem as Ecosystem;
  const affected: AffectedPackage = {
    ecosystem: knownEcosystem,
    name: normalizePackageName(knownEcosystem, name),
    versions: optionalArray(entry.versions, `${path}.versions`).map((version, i) => requireString(version, `${path}.versions[${i}]`)),
    ranges: optionalArray(entry.ranges, `${path}.ranges`).map((range, i) => parseRange(range, `${path}.ranges[${i}]`, knownEcosystem)),
  };
  const purl = optionalString(packageObject.purl, `${path}.package.purl`);
  if (purl !== undefined) affected.purl = purl;
  const databaseSpecific = optionalObject(entry.database_specific, `${path}.database_specific`);
  if (databaseSpecific !== undefined) affected.databaseSpecific = databaseSpecific;
  return affected;
}

function parseRange(range: unknown, path: string, ecosystem: Ecosystem): AffectedRange {
  if (!isRecord(range)) throw invalid(path, `is not an object but ${describeType(range)}`);

  const type = requireString(range.type, `${path}.type`);
  if (!RANGE_TYPES.has(type)) throw invalid(`${path}.type`, `is "${type}", expected SEMVER, ECOSYSTEM or GIT`);
  const rangeType = type as RangeType;

  if (range.events === undefined || range.events === null) throw invalid(`${path}.events`, 'is missing');
  const events = optionalArray(range.events, `${path}.events`).map((event, i) => parseEvent(event, `${path}.events[${i}]`, rangeType, ecosystem));
  // Without an introduced event the OSV evaluation never marks a version affected.
  if (!events.some((event) => event.kind === 'introduced')) throw invalid(`${path}.events`, 'has no introduced event');

  const parsed: AffectedRange = { type: rangeType, events };
  const repo = optionalString(range.repo, `${path}.repo`);
  if (repo !== undefined) parsed.repo = repo;
  return parsed;
}

function parseEvent(event: unknown, path: string, type: RangeType, ecosystem: Ecosystem): RangeEvent {
  if (!isRecord(event)) throw invalid(path, `is not an object but ${describeType(event)}`);

  const kinds = EVENT_KINDS.filter((kind) => event[kind] !== undefined);
  if (kinds.length !== 1) {
    const found = kinds.length === 0 ? 'none of them' : kinds.join(' and ');
    throw invalid(path, `must have exactly one of introduced, fixed, last_affected or limit, but has ${found}`);
  }
  const kind = kinds[0] as RangeEventKind;
  const version = requireString(event[kind], `${path}.${kind}`);

  // "0" as introduced sorts before every version and "*" in a limit is infinity. GIT events are
  // commit hashes, which only the repository can order.
  const isSpecial = (kind === 'introduced' && version === '0') || (kind === 'limit' && version.includes('*'));
  if (type !== 'GIT' && !isSpecial) {
    const scheme = schemeOfRange(type, ecosystem);
    if (scheme.parse(version) === undefined) throw invalid(`${path}.${kind}`, `is "${version}", which is not ${scheme.description}`);
  }
  return { kind, version };
}
