import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  affects,
  comparePep440,
  matchEnvironments,
  parseDependencies,
  parseOsv,
  parsePep440,
  type Advisory,
  type Dependency,
} from '../../src/advisories/index.js';
import { RekeyError } from '../../src/errors.js';

function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/lockfiles/${name}`, import.meta.url), 'utf8');
}

function npm(name: string, version: string): Dependency {
  return { ecosystem: 'npm', name, version };
}

function pypi(name: string, version: string): Dependency {
  return { ecosystem: 'PyPI', name, version };
}

function rekeyErrorOf(action: () => unknown): RekeyError {
  try {
    action();
  } catch (error) {
    if (error instanceof RekeyError) return error;
    throw error;
  }
  throw new Error('expected a RekeyError, but nothing was thrown');
}

/** Compares two version strings that must both parse. */
function pep440Order(left: string, right: string): number {
  const parsedLeft = parsePep440(left);
  const parsedRight = parsePep440(right);
  if (parsedLeft === undefined || parsedRight === undefined) throw new Error(`cannot parse ${left} or ${right}`);
  return Math.sign(comparePep440(parsedLeft, parsedRight));
}

/** Builds an OSV document with one affected package. */
function osvDocument(affected: Record<string, unknown>): Record<string, unknown> {
  return { id: 'TEST-0001', modified: '2024-05-01T00:00:00Z', affected: [affected] };
}

/** A MAL- advisory as the OpenSSF malicious-packages repository publishes it. */
const MALICIOUS_PYPI_ADVISORY = {
  schema_version: '1.5.0',
  id: 'MAL-2024-9001',
  modified: '2024-07-02T11:20:31Z',
  published: '2024-07-01T08:00:00Z',
  summary: 'Malicious code in Requests-Toolbelt2 (PyPI)',
  details: '\n---\n_-= Per source details. Do not edit below this line.=-_\n',
  affected: [{
    package: { ecosystem: 'PyPI', name: 'Requests_Toolbelt2', purl: 'pkg:pypi/requests-toolbelt2' },
    ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }],
    database_specific: { cwes: [{ cweId: 'CWE-506', name: 'Embedded Malicious Code' }] },
  }],
  database_specific: {
    'malicious-packages-origins': [{ source: 'ghsa-malware', id: 'GHSA-aaaa-bbbb-cccc', versions: ['0.1.0', '0.1.1'] }],
  },
};

describe('PEP 440 ordering', () => {
  it('orders dev, pre, final and post releases', () => {
    const ascending = [
      '1.0.dev1',
      '1.0a1.dev1',
      '1.0a1',
      '1.0a2',
      '1.0b2',
      '1.0rc1',
      '1.0',
      '1.0.post1.dev1',
      '1.0.post1',
      '1.0.post2',
      '1.0.1',
      '1.1.dev1',
      '1.1',
      '1.10',
      '2.0',
      '1!0.5',
    ];

    for (let i = 0; i + 1 < ascending.length; i += 1) {
      const [lower, higher] = [ascending[i] as string, ascending[i + 1] as string];
      expect(pep440Order(lower, higher), `${lower} < ${higher}`).toBe(-1);
      expect(pep440Order(higher, lower), `${higher} > ${lower}`).toBe(1);
    }
  });

  it('treats equivalent spellings as equal', () => {
    const equal: Array<[string, string]> = [
      ['1.0', '1.0.0'],
      ['1.0', '1.0.0.0'],
      ['1', '1.0'],
      ['1.0a1', '1.0alpha1'],
      ['1.0a1', '1.0-a.1'],
      ['1.0b0', '1.0beta'],
      ['1.0rc1', '1.0c1'],
      ['1.0rc1', '1.0pre1'],
      ['1.0.post1', '1.0-1'],
      ['1.0.post1', '1.0r1'],
      ['1.0.post0', '1.0.post'],
      ['1.0.dev0', '1.0-dev'],
      ['1.0', 'v1.0'],
      ['1.0', '0!1.0'],
      ['1.0', '1.0+ubuntu.1'],
      ['1.0RC1', '1.0rc1'],
      ['2024.01.05', '2024.1.5'],
    ];

    for (const [left, right] of equal) {
      expect(pep440Order(left, right), `${left} == ${right}`).toBe(0);
    }
  });

  it('parses the parts of a version', () => {
    expect(parsePep440('2!1.0.0rc2.post3.dev4+Ubuntu-1')).toEqual({
      epoch: 2n,
      release: [1n],
      preRelease: { label: 'rc', number: 2n },
      postRelease: 3n,
      devRelease: 4n,
      local: 'ubuntu.1',
    });
  });

  it('compares numbers past the double range', () => {
    expect(pep440Order('1.99999999999999999998', '1.99999999999999999999')).toBe(-1);
  });

  it('rejects invalid versions', () => {
    for (const text of ['', 'latest', '1..0', '1.0-beta-x', '1.0+', 'one.two', '1.0 final']) {
      expect(parsePep440(text), JSON.stringify(text)).toBeUndefined();
    }
  });
});

describe('parseOsv', () => {
  it('parses a MAL- advisory', () => {
    expect(parseOsv(MALICIOUS_PYPI_ADVISORY)).toEqual({
      id: 'MAL-2024-9001',
      summary: 'Malicious code in Requests-Toolbelt2 (PyPI)',
      modified: '2024-07-02T11:20:31Z',
      aliases: [],
      affected: [{
        ecosystem: 'PyPI',
        name: 'requests-toolbelt2',
        purl: 'pkg:pypi/requests-toolbelt2',
        versions: [],
        ranges: [{ type: 'ECOSYSTEM', events: [{ kind: 'introduced', version: '0' }] }],
        databaseSpecific: { cwes: [{ cweId: 'CWE-506', name: 'Embedded Malicious Code' }] },
      }],
      ignored: [],
      databaseSpecific: {
        'malicious-packages-origins': [{ source: 'ghsa-malware', id: 'GHSA-aaaa-bbbb-cccc', versions: ['0.1.0', '0.1.1'] }],
      },
    });
  });

  it('keeps withdrawn and aliases', () => {
    const advisory = parseOsv({
      ...osvDocument({ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['1.3.0'] }),
      withdrawn: '2024-06-01T00:00:00Z',
      aliases: ['GHSA-xxxx-yyyy-zzzz'],
    });

    expect(advisory.withdrawn).toBe('2024-06-01T00:00:00Z');
    expect(advisory.aliases).toEqual(['GHSA-xxxx-yyyy-zzzz']);
  });

  it('reports unsupported ecosystems as ignored', () => {
    const advisory = parseOsv({
      id: 'MAL-2024-9002',
      affected: [
        { package: { ecosystem: 'npm', name: 'event-stream' }, versions: ['3.3.6'] },
        { package: { ecosystem: 'Go', name: 'github.com/acme/tool' }, ranges: [{ type: 'SEMVER', events: [{ introduced: 'not checked' }] }] },
        { ranges: [{ type: 'GIT', repo: 'https://github.com/acme/tool', events: [{ introduced: '5f3c2a1b' }] }] },
      ],
    });

    expect(advisory.affected.map((affected) => affected.name)).toEqual(['event-stream']);
    expect(advisory.ignored).toEqual([
      { path: 'affected[1]', ecosystem: 'Go', name: 'github.com/acme/tool', reason: 'ecosystem "Go" is not supported, only npm and PyPI are' },
      { path: 'affected[2]', reason: 'the entry names no package' },
    ]);
  });

  it('keeps npm names as published', () => {
    const advisory = parseOsv(osvDocument({ package: { ecosystem: 'npm', name: '@Acme/Some_Pkg' }, versions: ['1.0.0'] }));

    expect(advisory.affected[0]?.name).toBe('@Acme/Some_Pkg');
  });

  it('names the offending field path', () => {
    const npmPackage = { ecosystem: 'npm', name: 'ua-parser-js' };
    const cases: Array<[unknown, string]> = [
      [[], 'the document is not a JSON object but an array'],
      [{ affected: [] }, 'id is missing'],
      [{ id: 42, affected: [] }, 'id is not a string but a number'],
      [{ id: 'X-1' }, 'affected is missing'],
      [{ id: 'X-1', affected: {} }, 'affected is not an array but an object'],
      [{ id: 'X-1', summary: '', affected: [] }, 'summary is empty'],
      [osvDocument({ package: { ecosystem: 'npm' } }), 'affected[0].package.name is missing'],
      [osvDocument({ package: { name: 'ua-parser-js' } }), 'affected[0].package.ecosystem is missing'],
      [osvDocument({ package: 'npm/ua-parser-js' }), 'affected[0].package is not an object but a string'],
      [osvDocument({ package: npmPackage, versions: ['0.7.29', 28] }), 'affected[0].versions[1] is not a string but a number'],
      [osvDocument({ package: npmPackage, ranges: [{ events: [{ introduced: '0' }] }] }), 'affected[0].ranges[0].type is missing'],
      [
        osvDocument({ package: npmPackage, ranges: [{ type: 'RANGE', events: [{ introduced: '0' }] }] }),
        'affected[0].ranges[0].type is "RANGE", expected SEMVER, ECOSYSTEM or GIT',
      ],
      [osvDocument({ package: npmPackage, ranges: [{ type: 'SEMVER' }] }), 'affected[0].ranges[0].events is missing'],
      [
        osvDocument({ package: npmPackage, ranges: [{ type: 'SEMVER', events: [{ fixed: '1.0.0' }] }] }),
        'affected[0].ranges[0].events has no introduced event',
      ],
      [
        osvDocument({ package: npmPackage, ranges: [{ type: 'SEMVER', events: [{ introduced: '0', fixed: '0.7.30' }] }] }),
        'affected[0].ranges[0].events[0] must have exactly one of introduced, fixed, last_affected or limit, but has introduced and fixed',
      ],
      [
        osvDocument({ package: npmPackage, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { patched: '1.0.0' }] }] }),
        'affected[0].ranges[0].events[1] must have exactly one of introduced, fixed, last_affected or limit, but has none of them',
      ],
      [
        osvDocument({ package: npmPackage, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: 'v0.7.30' }] }] }),
        'affected[0].ranges[0].events[1].fixed is "v0.7.30", which is not a semantic version',
      ],
      [
        osvDocument({ package: { ecosystem: 'PyPI', name: 'ctx' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: 'first' }] }] }),
        'affected[0].ranges[0].events[0].introduced is "first", which is not a PEP 440 version',
      ],
      [
        osvDocument({ package: npmPackage, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { last_affected: '' }] }] }),
        'affected[0].ranges[0].events[1].last_affected is empty',
      ],
      [
        { id: 'X-1', database_specific: ['origin'], affected: [] },
        'database_specific is not an object but an array',
      ],
    ];

    for (const [document, message] of cases) {
      const error = rekeyErrorOf(() => parseOsv(document));
      expect(error.code, message).toBe('INVALID_PARAMETERS');
      expect(error.message).toBe(`invalid OSV advisory: ${message}`);
    }
  });

  it('accepts GIT events without checking them', () => {
    const advisory = parseOsv(osvDocument({
      package: { ecosystem: 'npm', name: 'ua-parser-js' },
      versions: ['0.7.29'],
      ranges: [{ type: 'GIT', repo: 'https://github.com/faisalman/ua-parser-js', events: [{ introduced: '0' }, { fixed: '5f3c2a1b0e9d' }] }],
    }));

    expect(advisory.affected[0]?.ranges).toEqual([{
      type: 'GIT',
      repo: 'https://github.com/faisalman/ua-parser-js',
      events: [{ kind: 'introduced', version: '0' }, { kind: 'fixed', version: '5f3c2a1b0e9d' }],
    }]);
  });
});

describe('affects', () => {
  describe('when every version is affected', () => {
    const advisory = parseOsv(MALICIOUS_PYPI_ADVISORY);

    it('matches any version of the package', () => {
      for (const version of ['0.0.1', '0.1.0', '1.0.dev0', '99.0.post3', '1!0.1']) {
        expect(affects(advisory, pypi('requests-toolbelt2', version)), version).toBe(true);
      }
    });

    it('matches names after PEP 503 normalisation', () => {
      expect(affects(advisory, pypi('Requests.Toolbelt2', '0.1.0'))).toBe(true);
      expect(affects(advisory, pypi('requests__toolbelt2', '0.1.0'))).toBe(true);
    });

    it('does not match other packages', () => {
      expect(affects(advisory, pypi('requests-toolbelt', '0.1.0'))).toBe(false);
      expect(affects(advisory, npm('requests-toolbelt2', '0.1.0'))).toBe(false);
    });

    it('does not match an unparsable version', () => {
      expect(affects(advisory, pypi('requests-toolbelt2', 'latest'))).toBe(false);
    });
  });

  describe('when the advisory lists versions', () => {
    const advisory = parseOsv(osvDocument({
      package: { ecosystem: 'npm', name: 'ua-parser-js' },
      versions: ['0.7.29', '0.8.0', '1.0.0', 'nightly-2021'],
    }));

    it('matches exactly the listed versions', () => {
      expect(affects(advisory, npm('ua-parser-js', '0.7.29'))).toBe(true);
      expect(affects(advisory, npm('ua-parser-js', '1.0.0'))).toBe(true);
      expect(affects(advisory, npm('ua-parser-js', '0.7.30'))).toBe(false);
      expect(affects(advisory, npm('ua-parser-js', '1.0.1'))).toBe(false);
    });

    it('matches an invalid version by string', () => {
      expect(affects(advisory, npm('ua-parser-js', 'nightly-2021'))).toBe(true);
    });

    it('compares npm versions as strings', () => {
      expect(affects(advisory, npm('ua-parser-js', 'v0.7.29'))).toBe(false);
      expect(affects(advisory, npm('ua-parser-js', '1.0.0+build.1'))).toBe(false);
    });

    it('compares PyPI versions by PEP 440', () => {
      const pypiAdvisory = parseOsv(osvDocument({ package: { ecosystem: 'PyPI', name: 'ctx' }, versions: ['0.1.2', '0.2.2'] }));

      expect(affects(pypiAdvisory, pypi('ctx', '0.1.2'))).toBe(true);
      expect(affects(pypiAdvisory, pypi('ctx', '0.1.2.0'))).toBe(true);
      expect(affects(pypiAdvisory, pypi('ctx', '0.2.2+local'))).toBe(true);
      expect(affects(pypiAdvisory, pypi('ctx', '0.2.1'))).toBe(false);
    });
  });

  describe('when a SEMVER range has bounds', () => {
    function semverAdvisory(events: Array<Record<string, string>>): Advisory {
      return parseOsv(osvDocument({ package: { ecosystem: 'npm', name: 'coa' }, ranges: [{ type: 'SEMVER', events }] }));
    }

    it('excludes the fixed version', () => {
      const advisory = semverAdvisory([{ introduced: '2.0.3' }, { fixed: '2.0.5' }]);
      const expected: Array<[string, boolean]> = [
        ['2.0.2', false],
        ['2.0.3-rc.1', false],
        ['2.0.3', true],
        ['2.0.4', true],
        ['2.0.5-beta.1', true],
        ['2.0.5', false],
        ['3.0.0', false],
      ];

      for (const [version, affected] of expected) {
        expect(affects(advisory, npm('coa', version)), version).toBe(affected);
      }
    });

    it('includes the last_affected version', () => {
      const advisory = semverAdvisory([{ introduced: '0' }, { last_affected: '2.0.4' }]);

      expect(affects(advisory, npm('coa', '0.0.1'))).toBe(true);
      expect(affects(advisory, npm('coa', '2.0.4'))).toBe(true);
      expect(affects(advisory, npm('coa', '2.0.5-alpha.0'))).toBe(false);
      expect(affects(advisory, npm('coa', '2.0.5'))).toBe(false);
    });

    it('affects all later versions without an upper bound', () => {
      const advisory = semverAdvisory([{ introduced: '2.0.3' }]);

      expect(affects(advisory, npm('coa', '2.0.2'))).toBe(false);
      expect(affects(advisory, npm('coa', '2.0.3'))).toBe(true);
      expect(affects(advisory, npm('coa', '999.0.0'))).toBe(true);
    });

    it('sorts events before evaluating them', () => {
      const advisory = semverAdvisory([{ fixed: '3.2.5' }, { introduced: '3.0.0' }, { fixed: '1.0.2' }, { introduced: '1.0.0' }]);
      const expected: Array<[string, boolean]> = [
        ['0.9.0', false],
        ['1.0.0', true],
        ['1.0.1', true],
        ['1.0.2', false],
        ['2.5.0', false],
        ['3.0.0', true],
        ['3.2.4', true],
        ['3.2.5', false],
      ];

      for (const [version, affected] of expected) {
        expect(affects(advisory, npm('coa', version)), version).toBe(affected);
      }
    });

    it('stops at a limit', () => {
      const advisory = semverAdvisory([{ introduced: '1.0.0' }, { limit: '1.5.0' }]);

      expect(affects(advisory, npm('coa', '1.4.9'))).toBe(true);
      expect(affects(advisory, npm('coa', '1.5.0'))).toBe(false);
      expect(affects(semverAdvisory([{ introduced: '1.0.0' }, { limit: '*' }]), npm('coa', '9.0.0'))).toBe(true);
    });

    it('never matches an invalid version', () => {
      const advisory = semverAdvisory([{ introduced: '0' }]);

      for (const version of ['v1.0.0', '=1.0.0', '1.0', ' 1.0.0', 'latest', '']) {
        expect(affects(advisory, npm('coa', version)), JSON.stringify(version)).toBe(false);
      }
    });
  });

  describe('when a PyPI ECOSYSTEM range has bounds', () => {
    const advisory = parseOsv(osvDocument({
      package: { ecosystem: 'PyPI', name: 'ultralytics' },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '8.3.41' }, { fixed: '8.3.43' }] }],
    }));

    it('orders versions by PEP 440', () => {
      const expected: Array<[string, boolean]> = [
        ['8.3.40', false],
        ['8.3.41rc1', false],
        ['8.3.41', true],
        ['8.3.41.0', true],
        ['8.3.41.post1', true],
        ['8.3.42', true],
        ['8.3.43.dev2', true],
        ['8.3.43rc1', true],
        ['8.3.43', false],
        ['8.3.100', false],
        ['1!8.3.42', false],
      ];

      for (const [version, affected] of expected) {
        expect(affects(advisory, pypi('ultralytics', version)), version).toBe(affected);
      }
    });

    it('never matches an unparsable version', () => {
      expect(affects(advisory, pypi('ultralytics', '8.3.42-final-x'))).toBe(false);
    });
  });

  it('compares npm ECOSYSTEM ranges as semantic versions', () => {
    const advisory = parseOsv(osvDocument({
      package: { ecosystem: 'npm', name: 'rc' },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '1.2.9' }, { fixed: '1.2.10' }] }],
    }));

    expect(affects(advisory, npm('rc', '1.2.9'))).toBe(true);
    expect(affects(advisory, npm('rc', '1.2.10'))).toBe(false);
    expect(affects(advisory, npm('rc', '1.2.8'))).toBe(false);
  });

  it('ignores GIT ranges', () => {
    const advisory = parseOsv(osvDocument({
      package: { ecosystem: 'npm', name: 'ua-parser-js' },
      ranges: [{ type: 'GIT', repo: 'https://github.com/faisalman/ua-parser-js', events: [{ introduced: '0' }] }],
    }));

    expect(affects(advisory, npm('ua-parser-js', '0.7.29'))).toBe(false);
  });
});

describe('matchEnvironments', () => {
  const environments = new Map<string, readonly Dependency[]>([
    ['web-legacy', parseDependencies('pnpm-lock.yaml', fixture('pnpm-lock-v5.yaml'))],
    ['deploy', parseDependencies('package-lock.json', fixture('package-lock-v3.json'))],
    ['web', parseDependencies('pnpm-lock.yaml', fixture('pnpm-lock-v9.yaml'))],
    ['exporter', parseDependencies('requirements.txt', fixture('requirements.txt'))],
  ]);

  it('returns only the environment whose lockfile matches', () => {
    const advisory = parseOsv({
      id: 'MAL-2024-9003',
      affected: [{ package: { ecosystem: 'npm', name: 'ms' }, versions: ['2.1.3'] }],
    });

    expect(matchEnvironments(advisory, environments)).toEqual([{ environment: 'deploy', matches: [npm('ms', '2.1.3')] }]);
  });

  it('sorts matching environments by name', () => {
    const advisory = parseOsv({
      id: 'MAL-2024-9004',
      affected: [{ package: { ecosystem: 'npm', name: 'react' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '18.0.0' }, { fixed: '18.3.0' }] }] }],
    });

    expect(matchEnvironments(advisory, environments)).toEqual([
      { environment: 'web', matches: [npm('react', '18.2.0')] },
      { environment: 'web-legacy', matches: [npm('react', '18.2.0')] },
    ]);
  });

  it('lists every affected dependency of an environment', () => {
    const advisory = parseOsv({
      id: 'MAL-2024-9005',
      affected: [
        { package: { ecosystem: 'PyPI', name: 'PyYAML' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }] },
        { package: { ecosystem: 'PyPI', name: 'zope.interface' }, versions: ['6.1'] },
        { package: { ecosystem: 'PyPI', name: 'requests' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.31.0' }] }] },
      ],
    });

    expect(matchEnvironments(advisory, environments)).toEqual([
      { environment: 'exporter', matches: [pypi('pyyaml', '6.0.1'), pypi('zope-interface', '6.1')] },
    ]);
  });

  it('returns nothing when no environment matches', () => {
    const advisory = parseOsv({
      id: 'MAL-2024-9006',
      affected: [{ package: { ecosystem: 'npm', name: 'ms' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '3.0.0' }] }] }],
    });

    expect(matchEnvironments(advisory, environments)).toEqual([]);
  });
});
