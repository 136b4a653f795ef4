/** The package ecosystems rekey can match, spelled as OSV spells them. */
export type Ecosystem = 'npm' | 'PyPI';

/** One installed package version, as listed by a lockfile or a requirements file. */
export interface Dependency {
  ecosystem: Ecosystem;
  /** The package name: as published for npm, normalised per PEP 503 for PyPI. */
  name: string;
  version: string;
}

/** The dependency file formats rekey reads. */
export type DependencyFormat = 'package-lock' | 'requirements' | 'poetry-lock' | 'pnpm-lock';

/** An entry of a dependency file that names a package but no version that rekey can match. */
export interface SkippedEntry {
  /** The requirement line as written, or the lockfile key of the entry. */
  entry: string;
  /** The 1-based line number, where the format keeps one entry per line. */
  line?: number;
  reason: string;
}

/** The result of reading one dependency file. */
export interface DependencyList {
  format: DependencyFormat;
  /** Distinct dependencies, sorted by name and then version. */
  dependencies: Dependency[];
  skipped: SkippedEntry[];
}
