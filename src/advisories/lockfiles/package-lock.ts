import type { Dependency, SkippedEntry } from '../types.js';
import { invalidFile, isRecord, lineAtOffset, type ParsedEntries } from './common.js';

const NODE_MODULES = 'node_modules/';

/**
 * Reads an npm package-lock.json (or npm-shrinkwrap.json). Version 2 and 3 files list every
 * installed folder in `packages`. Version 1 files nest `dependencies` objects instead.
 */
export function parsePackageLock(content: string): ParsedEntries {
  const document = parseJson(content);
  if (!isRecord(document)) throw invalidFile('package-lock', 'the top level is not a JSON object');

  const lockfileVersion = document.lockfileVersion;
  if (lockfileVersion !== 1 && lockfileVersion !== 2 && lockfileVersion !== 3) {
    throw invalidFile('package-lock', `lockfileVersion ${JSON.stringify(lockfileVersion)} is not supported, expected 1, 2 or 3`);
  }

  const entries: ParsedEntries = { dependencies: [], skipped: [] };
  if (lockfileVersion === 1) {
    readDependencyTree(document.dependencies, '', entries);
    return entries;
  }

  if (!isRecord(document.packages)) throw invalidFile('package-lock', `packages is missing, although lockfileVersion ${lockfileVersion} requires it`);
  readPackages(document.packages, entries);
  return entries;
}

function parseJson(content: string): unknown {
  try {
    return JSON.parse(content);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // V8 reports the character offset of the error, which an operator cannot look up directly.
    const position = /at position (\d+)/.exec(error.message)?.[1];
    const line = position === undefined ? undefined : lineAtOffset(content, Number(position));
    throw invalidFile('package-lock', 'not valid JSON', line);
  }
}

/**
 * Reads the `packages` map of lockfile versions 2 and 3, keyed by install folder. Optional
 * packages for other platforms (fsevents on Linux) are read too, because the lockfile does not
 * record which optional packages were installed.
 */
function readPackages(packages: Record<string, unknown>, entries: ParsedEntries): void {
  for (const [key, entry] of Object.entries(packages)) {
    // The empty key is the project itself.
    if (key === '') continue;
    if (!isRecord(entry)) throw invalidFile('package-lock', `packages["${key}"] is not an object`);

    // Links point at workspace folders, and keys outside node_modules are those folders. Both are
    // the project's own code, not installed packages.
    if (entry.link === true) continue;
    const nameStart = key.lastIndexOf(NODE_MODULES);
    if (nameStart === -1) continue;

    // An alias ("foo": "npm:bar@1.0.0") installs bar in folder foo and records bar as `name`.
    const name = typeof entry.name === 'string' && entry.name !== '' ? entry.name : key.slice(nameStart + NODE_MODULES.length);
    if (typeof entry.version !== 'string' || entry.version === '') {
      entries.skipped.push({ entry: key, reason: 'the entry has no version' });
      continue;
    }
    entries.dependencies.push({ ecosystem: 'npm', name, version: entry.version });
  }
}

/** Reads the nested `dependencies` objects of lockfile version 1. */
function readDependencyTree(tree: unknown, parentFolder: string, entries: ParsedEntries): void {
  if (tree === undefined) return;
  if (!isRecord(tree)) throw invalidFile('package-lock', `dependencies of "${parentFolder || '(root)'}" is not an object`);

  for (const [folderName, entry] of Object.entries(tree)) {
    const folder = `${parentFolder}${NODE_MODULES}${folderName}`;
    if (!isRecord(entry)) throw invalidFile('package-lock', `dependencies["${folderName}"] under "${parentFolder || '(root)'}" is not an object`);

    const dependency = readVersionOneEntry(folder, folderName, entry.version);
    if ('reason' in dependency) entries.skipped.push(dependency);
    else entries.dependencies.push(dependency);

    readDependencyTree(entry.dependencies, `${folder}/`, entries);
  }
}

function readVersionOneEntry(folder: string, folderName: string, version: unknown): Dependency | SkippedEntry {
  if (typeof version !== 'string' || version === '') return { entry: folder, reason: 'the entry has no version' };

  // Version 1 records an alias as "npm:<real name>@<version>".
  if (version.startsWith('npm:')) {
    const target = version.slice('npm:'.length);
    const separator = target.indexOf('@', 1);
    if (separator === -1) return { entry: folder, reason: `the alias ${version} has no version` };
    return { ecosystem: 'npm', name: target.slice(0, separator), version: target.slice(separator + 1) };
  }

  // Git, tarball and file dependencies record their source instead of a registry version.
  if (version.includes(':') || version.includes('/')) {
    return { entry: folder, reason: `not installed from the registry: ${version}` };
  }
  return { ecosystem: 'npm', name: folderName, version };
}
