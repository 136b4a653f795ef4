import type { Ecosystem } from './types.js';

/**
 * Normalises a package name for comparison. PyPI names follow PEP 503: lower case, with each run
 * of `-`, `_` and `.` replaced by one `-`. npm names are case-sensitive and stay as they are.
 */
export function normalizePackageName(ecosystem: Ecosystem, name: string): string {
  if (ecosystem === 'npm') return name;
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}
