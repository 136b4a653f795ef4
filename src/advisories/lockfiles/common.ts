import { RekeyError } from '../../errors.js';
import type { Dependency, DependencyFormat, SkippedEntry } from '../types.js';

/** The dependencies and skipped entries one format parser found, before deduplication. */
export interface ParsedEntries {
  dependencies: Dependency[];
  skipped: SkippedEntry[];
}

/** The canonical file name of each format, used in error messages. */
export const FORMAT_FILE_NAMES: Readonly<Record<DependencyFormat, string>> = {
  'package-lock': 'package-lock.json',
  requirements: 'requirements.txt',
  'poetry-lock': 'poetry.lock',
  'pnpm-lock': 'pnpm-lock.yaml',
};

/**
 * Removes the user information (`user:token@`) from URLs in a requirement, because a private
 * index or git URL often carries a token.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1[redacted]@');
}

/**
 * Builds the INVALID_PARAMETERS error for a file that cannot be read as `format`. The message
 * names the line, never its text: a dependency file can carry a token (a private index URL, a
 * stray assignment), and the message reaches the API client.
 */
export function invalidFile(format: DependencyFormat, problem: string, line?: number, cause?: unknown): RekeyError {
  const where = line === undefined ? FORMAT_FILE_NAMES[format] : `${FORMAT_FILE_NAMES[format]} line ${line}`;
  return new RekeyError('INVALID_PARAMETERS', `invalid ${where}: ${problem}`, { cause });
}

/** Returns the 1-based line number of a character offset. */
export function lineAtOffset(content: string, offset: number): number {
  let line = 1;
  const end = Math.min(offset, content.length);
  for (let i = 0; i < end; i += 1) {
    if (content.charCodeAt(i) === 10) line += 1;
  }
  return line;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
