import semver, { type SemVer } from 'semver';
import { comparePep440, parsePep440, type Pep440Version } from './pep440.js';
import type { Ecosystem } from './types.js';

/** A version syntax and its order, as one OSV range type uses it. */
export interface VersionScheme<V> {
  /** The name of a valid version, for error messages. */
  description: string;
  parse(text: string): V | undefined;
  compare(left: V, right: V): number;
}

/**
 * Semantic Versioning 2.0 as the semver package implements it, without its lenient inputs: a
 * leading `v` or `=` or surrounding spaces make the text invalid instead of being removed.
 */
export const SEMVER_SCHEME: VersionScheme<SemVer> = {
  description: 'a semantic version',
  parse(text) {
    if (!/^[0-9]/.test(text) || text.trim() !== text) return undefined;
    return semver.parse(text) ?? undefined;
  },
  compare: (left, right) => semver.compare(left, right),
};

export const PEP440_SCHEME: VersionScheme<Pep440Version> = {
  description: 'a PEP 440 version',
  parse(text) {
    if (text.trim() !== text) return undefined;
    return parsePep440(text);
  },
  compare: comparePep440,
};

/**
 * Returns the scheme that orders the versions of an OSV range. SEMVER ranges always use semantic
 * versions. ECOSYSTEM ranges use the ecosystem's own order: npm versions are semantic versions
 * and PyPI versions follow PEP 440.
 */
export function schemeOfRange(type: 'SEMVER' | 'ECOSYSTEM', ecosystem: Ecosystem): VersionScheme<unknown> {
  if (type === 'ECOSYSTEM' && ecosystem === 'PyPI') return PEP440_SCHEME as VersionScheme<unknown>;
  return SEMVER_SCHEME as VersionScheme<unknown>;
}
