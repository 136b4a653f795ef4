import { parse, TomlError } from 'smol-toml';
import { invalidFile, isRecord, type ParsedEntries } from './common.js';

/** Reads a Poetry poetry.lock, which lists each installed package in a `[[package]]` table. */
export function parsePoetryLock(content: string): ParsedEntries {
  const document = parseToml(content);
  const packages = document.package;
  if (packages === undefined) return { dependencies: [], skipped: [] };
  if (!Array.isArray(packages)) throw invalidFile('poetry-lock', 'package is not an array of tables ([[package]])');

  const entries: ParsedEntries = { dependencies: [], skipped: [] };
  packages.forEach((entry: unknown, index) => {
    if (!isRecord(entry)) throw invalidFile('poetry-lock', `package[${index}] is not a table`);
    const { name, version } = entry;
    if (typeof name !== 'string' || name === '') throw invalidFile('poetry-lock', `package[${index}].name is missing`);
    if (typeof version !== 'string' || version === '') throw invalidFile('poetry-lock', `package[${index}].version is missing (package "${name}")`);
    entries.dependencies.push({ ecosystem: 'PyPI', name, version });
  });
  return entries;
}

function parseToml(content: string): Record<string, unknown> {
  try {
    return parse(content);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    throw invalidFile('poetry-lock', 'not valid TOML', error.line);
  }
}
