import { normalizePackageName } from './names.js';
import type { AffectedPackage, AffectedRange, RangeEvent } from './osv.js';
import type { Dependency } from './types.js';
import { PEP440_SCHEME, schemeOfRange, type VersionScheme } from './versions.js';

/** An environment whose dependencies an advisory affects, and those dependencies. */
export interface EnvironmentMatch {
  environment: string;
  matches: Dependency[];
}

/** A range event with its version parsed, "0" as the lowest bound and "*" as the highest. */
interface Bound<V> {
  kind: RangeEvent['kind'];
  bound: V | typeof LOWEST | typeof HIGHEST;
}

const LOWEST = Symbol('lowest');
const HIGHEST = Symbol('highest');

/**
 * Returns whether an advisory affects a dependency, following the OSV evaluation: the package
 * matches by ecosystem and normalised name, and the version is listed in `versions` or falls in
 * a SEMVER or ECOSYSTEM range. GIT ranges never match, because they need the repository.
 */
export function affects(advisory: { affected: readonly AffectedPackage[] }, dependency: Dependency): boolean {
  const name = normalizePackageName(dependency.ecosystem, dependency.name);
  return advisory.affected.some((affected) =>
    affected.ecosystem === dependency.ecosystem &&
    normalizePackageName(affected.ecosystem, affected.name) === name &&
    (isListed(affected, dependency.version) || affected.ranges.some((range) => isInRange(affected, range, dependency.version))));
}

/**
 * Returns the environments with at least one affected dependency, sorted by environment name,
 * each with its affected dependencies in input order.
 */
export function matchEnvironments(
  advisory: { affected: readonly AffectedPackage[] },
  dependencies: ReadonlyMap<string, readonly Dependency[]>,
): EnvironmentMatch[] {
  const results: EnvironmentMatch[] = [];
  for (const [environment, list] of dependencies) {
    const matches = list.filter((dependency) => affects(advisory, dependency));
    if (matches.length > 0) results.push({ environment, matches });
  }
  return results.sort((left, right) => compareText(left.environment, right.environment));
}

function compareText(left: string, right: string): number {
  if (left === right) return 0;
  return left < right ? -1 : 1;
}

/**
 * Compares listed versions as strings. PyPI versions also match when PEP 440 orders them equal,
 * as pip's `==1.0` does, so 1.0 matches a listed 1.0.0 and 1.0+local matches a listed 1.0.
 */
function isListed(affected: AffectedPackage, version: string): boolean {
  if (affected.versions.includes(version)) return true;
  if (affected.ecosystem !== 'PyPI') return false;

  const parsed = PEP440_SCHEME.parse(version);
  if (parsed === undefined) return false;
  return affected.versions.some((listed) => {
    const parsedListed = PEP440_SCHEME.parse(listed);
    return parsedListed !== undefined && PEP440_SCHEME.compare(parsed, parsedListed) === 0;
  });
}

function isInRange(affected: AffectedPackage, range: AffectedRange, version: string): boolean {
  if (range.type === 'GIT') return false;
  return evaluateRange(schemeOfRange(range.type, affected.ecosystem), range.events, version);
}

/**
 * Evaluates one range as the evaluation pseudocode of the OSV schema 1.6 does. With limit events,
 * the version must be below one of them. Then the events are applied in version order: introduced
 * opens the range, fixed closes it at its version and last_affected closes it after its version.
 * A version or event that the scheme cannot parse makes the range not match.
 */
function evaluateRange<V>(scheme: VersionScheme<V>, events: readonly RangeEvent[], text: string): boolean {
  const version = scheme.parse(text);
  if (version === undefined) return false;

  const bounds: Bound<V>[] = [];
  for (const event of events) {
    const bound = parseBound(scheme, event);
    if (bound === undefined) return false;
    bounds.push(bound);
  }
  const compare = (left: Bound<V>['bound'], right: Bound<V>['bound']): number => compareBounds(scheme, left, right);

  const limits = bounds.filter((bound) => bound.kind === 'limit');
  if (limits.length > 0 && !limits.some((limit) => compare(version, limit.bound) < 0)) return false;

  // Array.prototype.sort is stable, so events at the same version keep their document order.
  let affected = false;
  for (const { kind, bound } of [...bounds].sort((left, right) => compare(left.bound, right.bound))) {
    if (kind === 'introduced' && compare(version, bound) >= 0) affected = true;
    else if (kind === 'fixed' && compare(version, bound) >= 0) affected = false;
    else if (kind === 'last_affected' && compare(version, bound) > 0) affected = false;
  }
  return affected;
}

function parseBound<V>(scheme: VersionScheme<V>, event: RangeEvent): Bound<V> | undefined {
  if (event.kind === 'introduced' && event.version === '0') return { kind: event.kind, bound: LOWEST };
  if (event.kind === 'limit' && event.version.includes('*')) return { kind: event.kind, bound: HIGHEST };
  const parsed = scheme.parse(event.version);
  return parsed === undefined ? undefined : { kind: event.kind, bound: parsed };
}

function compareBounds<V>(scheme: VersionScheme<V>, left: V | symbol, right: V | symbol): number {
  if (left === right) return 0;
  if (left === LOWEST || right === HIGHEST) return -1;
  if (left === HIGHEST || right === LOWEST) return 1;
  return scheme.compare(left as V, right as V);
}
