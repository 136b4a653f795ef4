import { parse, YAMLParseError } from 'yaml';
import { invalidFile, isRecord, type ParsedEntries } from './common.js';

/** pnpm lockfile majors: 5 (pnpm 7 and earlier), 6 (pnpm 8) and 9 (pnpm 9 and 10). */
const SUPPORTED_MAJORS = new Set([5, 6, 9]);

interface PackageId {
  name: string;
  version: string;
}

/**
 * Reads a pnpm-lock.yaml. Every installed package has a key under `packages`, spelled
 * `/name/1.2.3` in lockfile 5, `/name@1.2.3` in lockfile 6 and `name@1.2.3` in lockfile 9,
 * with peer dependencies appended as `_peer@1.0.0` (5) or `(peer@1.0.0)` (6).
 */
export function parsePnpmLock(content: string): ParsedEntries {
  const document = parseYaml(content);
  if (!isRecord(document)) throw invalidFile('pnpm-lock', 'the top level is not a mapping');

  const major = Math.floor(Number(document.lockfileVersion));
  if (!SUPPORTED_MAJORS.has(major)) {
    throw invalidFile('pnpm-lock', `lockfileVersion ${JSON.stringify(document.lockfileVersion)} is not supported, expected 5.x, 6.x or 9.x`);
  }

  const entries: ParsedEntries = { dependencies: [], skipped: [] };
  if (document.packages === undefined || document.packages === null) return entries;
  if (!isRecord(document.packages)) throw invalidFile('pnpm-lock', 'packages is not a mapping');

  for (const [key, entry] of Object.entries(document.packages)) {
    const fromKey = parsePackageKey(key, major);
    if (isLocalKey(key, fromKey)) {
      entries.skipped.push({ entry: key, reason: 'a local file or directory, not a registry package' });
      continue;
    }

    // Git and tarball packages carry their name and version as fields, because their key
    // contains a URL instead of a version.
    const fields = isRecord(entry) ? entry : {};
    const name = typeof fields.name === 'string' ? fields.name : fromKey?.name;
    const version = typeof fields.version === 'string' ? fields.version : fromKey?.version;

    if (name === undefined || name === '' || version === undefined || version === '') {
      entries.skipped.push({ entry: key, reason: 'the key names no package version' });
    } else if (version.includes(':') || version.includes('/')) {
      entries.skipped.push({ entry: key, reason: `not installed from the registry: ${version}` });
    } else {
      entries.dependencies.push({ ecosystem: 'npm', name, version });
    }
  }
  return entries;
}

function parseYaml(content: string): unknown {
  try {
    return parse(content);
  } catch (error) {
    if (!(error instanceof YAMLParseError)) throw error;
    throw invalidFile('pnpm-lock', 'not valid YAML', error.linePos?.[0].line);
  }
}

/** Returns whether a key is a `file:` or `link:` dependency: `file:dir` (5, 6) or `name@file:dir` (9). */
function isLocalKey(key: string, fromKey: PackageId | undefined): boolean {
  const isLocal = (text: string): boolean => text.startsWith('file:') || text.startsWith('link:');
  return isLocal(key.replace(/^\//, '')) || (fromKey !== undefined && isLocal(fromKey.version));
}

/** Splits a `packages` key into name and version, or returns undefined when it has neither. */
export function parsePackageKey(key: string, major: number): PackageId | undefined {
  let text = key.startsWith('/') ? key.slice(1) : key;

  // Lockfiles 6 and 9 append peer dependencies in parentheses, which no package name contains.
  const peersStart = text.indexOf('(');
  if (peersStart !== -1) text = text.slice(0, peersStart);

  // NOTE: a lockfile 5 key without the leading "/" is read only through the entry's name and
  // version fields, which git and tarball sources carry. A registry package keyed that way would
  // be reported as skipped.
  if (major === 5 && key.startsWith('/')) return splitSlashKey(text);
  return splitAtKey(text);
}

/** Splits a lockfile 5 key: `name/1.2.3` or `@scope/name/1.2.3_peer@1.0.0+other@2.0.0`. */
function splitSlashKey(text: string): PackageId | undefined {
  const segments = text.split('/');
  const nameLength = segments[0]?.startsWith('@') === true ? 2 : 1;
  if (segments.length <= nameLength) return undefined;

  const name = segments.slice(0, nameLength).join('/');
  const versionWithPeers = segments.slice(nameLength).join('/');
  // A semantic version never contains "_", so the first one starts the peer suffix.
  const peersStart = versionWithPeers.indexOf('_');
  const version = peersStart === -1 ? versionWithPeers : versionWithPeers.slice(0, peersStart);
  return { name, version };
}

/** Splits a lockfile 6 or 9 key: `name@1.2.3`, `@scope/name@1.2.3` or `alias@npm:name@1.2.3`. */
function splitAtKey(text: string): PackageId | undefined {
  // Search from index 1 to pass over a scope's leading "@", the only "@" a package name can contain.
  const separator = text.indexOf('@', 1);
  if (separator === -1) return undefined;

  const name = text.slice(0, separator);
  const version = text.slice(separator + 1);
  if (version.startsWith('npm:')) return splitAtKey(version.slice('npm:'.length));
  return { name, version };
}
