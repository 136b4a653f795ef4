export { formatOfFileName, parseDependencies, parseDependencyFile } from './lockfiles/index.js';
export { affects, matchEnvironments, type EnvironmentMatch } from './match.js';
export { normalizePackageName } from './names.js';
export {
  parseOsv,
  type Advisory,
  type AffectedPackage,
  type AffectedRange,
  type IgnoredPackage,
  type RangeEvent,
  type RangeEventKind,
  type RangeType,
} from './osv.js';
export { comparePep440, parsePep440, type Pep440Version } from './pep440.js';
export type { Dependency, DependencyFormat, DependencyList, Ecosystem, SkippedEntry } from './types.js';
