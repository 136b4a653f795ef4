/**
 * PEP 440 version parsing and ordering for the ECOSYSTEM ranges of PyPI advisories. The accepted
 * syntax is the one `packaging.version` 24.2 accepts: case-insensitive, an optional leading `v`,
 * `-`, `_` or `.` separators, the spellings `alpha`, `beta`, `c`, `pre`, `preview`, `rev` and `r`,
 * and implicit numbers (`1.0a` is `1.0a0`). Unlike `packaging`, the order ignores local labels.
 */

export type PreReleaseLabel = 'a' | 'b' | 'rc';

export interface Pep440Version {
  epoch: bigint;
  /** The release segment with trailing zeros removed, so that 1.0 and 1.0.0 compare equal. */
  release: bigint[];
  preRelease: { label: PreReleaseLabel; number: bigint } | undefined;
  postRelease: bigint | undefined;
  devRelease: bigint | undefined;
  /** The local version label, normalised to lower case with `.` separators. Ordering ignores it. */
  local: string | undefined;
}

/** The version pattern of `packaging.version` 24.2, anchored and with named groups. */
const VERSION_PATTERN = new RegExp(
  '^\\s*v?' +
    '(?:(?<epoch>[0-9]+)!)?' +
    '(?<release>[0-9]+(?:\\.[0-9]+)*)' +
    '(?:[-_.]?(?<preLabel>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?<preNumber>[0-9]+)?)?' +
    '(?:-(?<implicitPost>[0-9]+)|[-_.]?(?<postLabel>post|rev|r)[-_.]?(?<postNumber>[0-9]+)?)?' +
    '(?:[-_.]?(?<devLabel>dev)[-_.]?(?<devNumber>[0-9]+)?)?' +
    '(?:\\+(?<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?' +
    '\\s*$',
  'i',
);

const PRE_RELEASE_LABELS: Readonly<Record<string, PreReleaseLabel>> = {
  a: 'a', alpha: 'a', b: 'b', beta: 'b', c: 'rc', rc: 'rc', pre: 'rc', preview: 'rc',
};

const PRE_RELEASE_RANK: Readonly<Record<PreReleaseLabel, number>> = { a: 0, b: 1, rc: 2 };

/** Parses a PEP 440 version, or returns undefined when the text is not one. */
export function parsePep440(text: string): Pep440Version | undefined {
  const groups = VERSION_PATTERN.exec(text)?.groups;
  if (groups === undefined) return undefined;

  const release = (groups.release ?? '0').split('.').map((part) => BigInt(part));
  while (release.length > 1 && release[release.length - 1] === 0n) release.pop();

  const preLabel = groups.preLabel?.toLowerCase();
  const preRelease = preLabel === undefined
    ? undefined
    : { label: PRE_RELEASE_LABELS[preLabel] ?? 'rc', number: BigInt(groups.preNumber ?? '0') };

  let postRelease: bigint | undefined;
  if (groups.implicitPost !== undefined) postRelease = BigInt(groups.implicitPost);
  else if (groups.postLabel !== undefined) postRelease = BigInt(groups.postNumber ?? '0');

  const devRelease = groups.devLabel === undefined ? undefined : BigInt(groups.devNumber ?? '0');
  const local = groups.local?.toLowerCase().replace(/[-_]/g, '.');

  return { epoch: BigInt(groups.epoch ?? '0'), release, preRelease, postRelease, devRelease, local };
}

function compareBigInts(left: bigint, right: bigint): number {
  if (left === right) return 0;
  return left < right ? -1 : 1;
}

/** Compares release segments as if the shorter one were padded with zeros. */
function compareReleases(left: readonly bigint[], right: readonly bigint[]): number {
  const length = Math.max(left.length, right.length);
  for (let i = 0; i < length; i += 1) {
    const order = compareBigInts(left[i] ?? 0n, right[i] ?? 0n);
    if (order !== 0) return order;
  }
  return 0;
}

/**
 * Ranks the pre-release part. A version with only a dev release sorts before every pre-release
 * of the same release (1.0.dev1 < 1.0a1), and a final or post release sorts after all of them.
 */
function preReleaseKey(version: Pep440Version): [number, bigint] {
  if (version.preRelease !== undefined) {
    return [PRE_RELEASE_RANK[version.preRelease.label], version.preRelease.number];
  }
  if (version.postRelease === undefined && version.devRelease !== undefined) return [-1, 0n];
  return [3, 0n];
}

/**
 * Compares two versions in PEP 440 order and returns a negative number, zero or a positive
 * number. Local version labels do not take part, so 1.0+ubuntu1 compares equal to 1.0.
 */
export function comparePep440(left: Pep440Version, right: Pep440Version): number {
  const epochOrder = compareBigInts(left.epoch, right.epoch);
  if (epochOrder !== 0) return epochOrder;

  const releaseOrder = compareReleases(left.release, right.release);
  if (releaseOrder !== 0) return releaseOrder;

  const [leftPreRank, leftPreNumber] = preReleaseKey(left);
  const [rightPreRank, rightPreNumber] = preReleaseKey(right);
  if (leftPreRank !== rightPreRank) return leftPreRank - rightPreRank;
  const preNumberOrder = compareBigInts(leftPreNumber, rightPreNumber);
  if (preNumberOrder !== 0) return preNumberOrder;

  // No post release sorts before any post release.
  if (left.postRelease !== right.postRelease) {
    if (left.postRelease === undefined) return -1;
    if (right.postRelease === undefined) return 1;
    return compareBigInts(left.postRelease, right.postRelease);
  }

  // No dev release sorts after any dev release.
  if (left.devRelease !== right.devRelease) {
    if (left.devRelease === undefined) return 1;
    if (right.devRelease === undefined) return -1;
    return compareBigInts(left.devRelease, right.devRelease);
  }
  return 0;
}
