import { RekeyError } from '../../errors.js';
import { normalizePackageName } from '../names.js';
import type { Dependency, DependencyFormat, DependencyList } from '../types.js';
import { redactUrlCredentials, type ParsedEntries } from './common.js';
import { parsePackageLock } from './package-lock.js';
import { parsePnpmLock } from './pnpm-lock.js';
import { parsePoetryLock } from './poetry-lock.js';
import { parseRequirements } from './requirements.js';

const PARSERS: Readonly<Record<DependencyFormat, (content: string) => ParsedEntries>> = {
  'package-lock': parsePackageLock,
  requirements: parseRequirements,
  'poetry-lock': parsePoetryLock,
  'pnpm-lock': parsePnpmLock,
};

/**
 * Returns the format a file's base name implies, or undefined for other names. Besides the
 * canonical names this accepts npm-shrinkwrap.json, which has the package-lock format, and
 * requirements files with a prefix or suffix such as requirements-dev.txt or dev-requirements.txt.
 */
export function formatOfFileName(fileName: string): DependencyFormat | undefined {
  const baseName = fileName.split(/[/\\]/).pop() ?? '';
  if (baseName === 'package-lock.json' || baseName === 'npm-shrinkwrap.json') return 'package-lock';
  if (baseName === 'poetry.lock') return 'poetry-lock';
  if (baseName === 'pnpm-lock.yaml') return 'pnpm-lock';
  if (/^(?:[\w.-]*[-_.])?requirements(?:[-_.][\w.-]*)?\.txt$/.test(baseName)) return 'requirements';
  return undefined;
}

/**
 * Parses a dependency file into distinct dependencies, sorted by name and then version, plus the
 * entries that name no matchable version. `format` wins over the file name, so an upload without a
 * name can still be read. PyPI names are normalised per PEP 503. Throws INVALID_PARAMETERS when
 * the format is unknown or the file cannot be parsed, naming the format and, if known, the line.
 */
export function parseDependencyFile(fileName: string | undefined, content: string, format?: DependencyFormat): DependencyList {
  const resolvedFormat = format ?? (fileName === undefined ? undefined : formatOfFileName(fileName));
  if (resolvedFormat === undefined) {
    const subject = fileName === undefined || fileName === '' ? 'a file without a name' : `"${fileName}"`;
    throw new RekeyError('INVALID_PARAMETERS', `cannot tell the dependency format of ${subject}: name it package-lock.json, requirements.txt, poetry.lock or pnpm-lock.yaml, or pass the format`);
  }

  const parser = Object.hasOwn(PARSERS, resolvedFormat) ? PARSERS[resolvedFormat] : undefined;
  if (parser === undefined) {
    throw new RekeyError('INVALID_PARAMETERS', `unknown dependency format "${String(resolvedFormat)}": expected ${Object.keys(PARSERS).join(', ')}`);
  }

  const { dependencies, skipped } = parser(content.replace(/^\uFEFF/, ''));
  // Skipped entries reach the API client: a git or tarball URL in any format can carry a token.
  const redacted = skipped.map((entry) => ({ ...entry, entry: redactUrlCredentials(entry.entry), reason: redactUrlCredentials(entry.reason) }));
  return { format: resolvedFormat, dependencies: distinctSorted(dependencies), skipped: redacted };
}

/** Parses a dependency file like parseDependencyFile and returns only the dependencies. */
export function parseDependencies(fileName: string | undefined, content: string, format?: DependencyFormat): Dependency[] {
  return parseDependencyFile(fileName, content, format).dependencies;
}

function distinctSorted(dependencies: readonly Dependency[]): Dependency[] {
  const byKey = new Map<string, Dependency>();
  for (const dependency of dependencies) {
    const name = normalizePackageName(dependency.ecosystem, dependency.name);
    const key = `${dependency.ecosystem}\u0000${name}\u0000${dependency.version}`;
    if (!byKey.has(key)) byKey.set(key, { ecosystem: dependency.ecosystem, name, version: dependency.version });
  }
  return [...byKey.values()].sort(compareDependencies);
}

function compareText(left: string, right: string): number {
  if (left === right) return 0;
  return left < right ? -1 : 1;
}

function compareDependencies(left: Dependency, right: Dependency): number {
  return compareText(left.ecosystem, right.ecosystem) || compareText(left.name, right.name) || compareText(left.version, right.version);
}
