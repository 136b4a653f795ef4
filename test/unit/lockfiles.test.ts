import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatOfFileName, parseDependencies, parseDependencyFile, type Dependency } from '../../src/advisories/index.js';
import { parsePackageKey } from '../../src/advisories/lockfiles/pnpm-lock.js';
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

/** Runs `action` and returns the RekeyError it throws, failing the test if it throws none. */
function rekeyErrorOf(action: () => unknown): RekeyError {
  try {
    action();
  } catch (error) {
    if (error instanceof RekeyError) return error;
    throw error;
  }
  throw new Error('expected a RekeyError, but nothing was thrown');
}

describe('parseDependencies', () => {
  describe('when the file is a package-lock.json', () => {
    it('reads lockfile version 3 packages', () => {
      expect(parseDependencies('package-lock.json', fixture('package-lock-v3.json'))).toEqual([
        npm('@types/node', '20.11.5'),
        npm('debug', '2.6.9'),
        npm('ms', '2.0.0'),
        npm('ms', '2.1.3'),
        npm('send', '0.18.0'),
        npm('string-width', '4.2.3'),
        npm('undici-types', '5.26.5'),
      ]);
    });

    it('keeps nested versions and merges duplicates', () => {
      const dependencies = parseDependencies('package-lock.json', fixture('package-lock-v3.json'));

      expect(dependencies.filter((dependency) => dependency.name === 'ms')).toEqual([npm('ms', '2.0.0'), npm('ms', '2.1.3')]);
      expect(dependencies.filter((dependency) => dependency.name === 'debug')).toEqual([npm('debug', '2.6.9')]);
    });

    it('skips the root, workspace folders and links', () => {
      const list = parseDependencyFile('package-lock.json', fixture('package-lock-v3.json'));
      const names = list.dependencies.map((dependency) => dependency.name);

      expect(names).not.toContain('deploy-bot');
      expect(names).not.toContain('@deploy-bot/shared');
      expect(list.skipped).toEqual([]);
    });

    it('records an alias under its real name', () => {
      const names = parseDependencies('package-lock.json', fixture('package-lock-v3.json')).map((dependency) => dependency.name);

      expect(names).toContain('string-width');
      expect(names).not.toContain('string-width-cjs');
    });

    it('reads lockfile version 2 packages', () => {
      expect(parseDependencies('package-lock.json', fixture('package-lock-v2.json'))).toEqual([
        npm('has-flag', '4.0.0'),
        npm('lodash', '4.17.21'),
        npm('supports-color', '7.2.0'),
      ]);
    });

    it('prefers packages over dependencies in version 2', () => {
      const content = JSON.stringify({
        lockfileVersion: 2,
        packages: { '': { name: 'app' }, 'node_modules/lodash': { version: '4.17.21' } },
        dependencies: { lodash: { version: '4.17.20' } },
      });

      expect(parseDependencies('package-lock.json', content)).toEqual([npm('lodash', '4.17.21')]);
    });

    it('reads the lockfile version 1 tree', () => {
      const list = parseDependencyFile('package-lock.json', fixture('package-lock-v1.json'));

      expect(list.dependencies).toEqual([
        npm('axios', '0.21.4'),
        npm('follow-redirects', '1.14.9'),
        npm('lodash', '4.17.21'),
        npm('minimist', '0.0.8'),
        npm('minimist', '1.2.8'),
        npm('mkdirp', '0.5.6'),
      ]);
      expect(list.skipped).toEqual([{
        entry: 'node_modules/build-tools',
        reason: 'not installed from the registry: git+ssh://[redacted]@github.com/acme/build-tools.git#3f2a1b9c0d4e5f60718293a4b5c6d7e8f9012345',
      }]);
    });

    it('reports an entry without a version', () => {
      const content = JSON.stringify({
        lockfileVersion: 3,
        packages: { '': {}, 'node_modules/ms': { version: '2.1.3' }, 'node_modules/ghost': { extraneous: true } },
      });
      const list = parseDependencyFile('package-lock.json', content);

      expect(list.dependencies).toEqual([npm('ms', '2.1.3')]);
      expect(list.skipped).toEqual([{ entry: 'node_modules/ghost', reason: 'the entry has no version' }]);
    });

    it('rejects an unsupported lockfileVersion', () => {
      const error = rekeyErrorOf(() => parseDependencies('package-lock.json', '{"lockfileVersion": 4, "packages": {}}'));

      expect(error.code).toBe('INVALID_PARAMETERS');
      expect(error.message).toBe('invalid package-lock.json: lockfileVersion 4 is not supported, expected 1, 2 or 3');
    });

    it('names the line of a JSON syntax error', () => {
      const content = [
        '{',
        '  "lockfileVersion": 3,',
        '  "packages": {',
        '    "node_modules/ms": { "version": "2.1.3" }',
        '    "node_modules/debug": { "version": "2.6.9" }',
        '  }',
        '}',
      ].join('\n');
      const error = rekeyErrorOf(() => parseDependencies('package-lock.json', content));

      expect(error.code).toBe('INVALID_PARAMETERS');
      expect(error.message).toBe("invalid package-lock.json line 5: not valid JSON");
    });

    it('rejects an empty file', () => {
      const error = rekeyErrorOf(() => parseDependencies('package-lock.json', ''));

      expect(error.message).toBe('invalid package-lock.json: not valid JSON');
    });
  });

  describe('when the file is a requirements.txt', () => {
    it('reads exact pins with extras and markers', () => {
      expect(parseDependencies('requirements.txt', fixture('requirements.txt'))).toEqual([
        pypi('charset-normalizer', '3.3.2'),
        pypi('pyyaml', '6.0.1'),
        pypi('requests', '2.31.0'),
        pypi('typing-extensions', '4.9.0'),
        pypi('zope-interface', '6.1'),
      ]);
    });

    it('reports unpinned requirements with their lines', () => {
      expect(parseDependencyFile('requirements.txt', fixture('requirements.txt')).skipped).toEqual([
        { entry: 'urllib3>=1.21.1,<3', line: 13, reason: 'not pinned to one version with ==' },
        { entry: 'idna', line: 14, reason: 'not pinned to one version with ==' },
        { entry: 'numpy==1.26.*', line: 15, reason: 'not pinned to one version with ==' },
        {
          entry: 'torch @ https://download.pytorch.org/whl/cpu/torch-2.2.0%2Bcpu-cp311-cp311-linux_x86_64.whl',
          line: 16,
          reason: 'a URL or path requirement has no version',
        },
      ]);
    });

    it('ignores option lines, comments and hashes', () => {
      const content = [
        '# exported by pip freeze',
        '--extra-index-url https://pypi.example.com/simple',
        '-c constraints.txt',
        '--hash=sha256:0000000000000000000000000000000000000000000000000000000000000000',
        'six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254',
        'attrs==23.2.0 # pinned for the exporter',
        'http://example.com/#not-a-comment==1.0',
      ].join('\n');
      const list = parseDependencyFile('requirements.txt', content);

      expect(list.dependencies).toEqual([pypi('attrs', '23.2.0'), pypi('six', '1.16.0')]);
      expect(list.skipped).toEqual([
        { entry: 'http://example.com/#not-a-comment==1.0', line: 7, reason: 'a URL or path requirement has no version' },
      ]);
    });

    it('reads parenthesised and combined specifiers', () => {
      const content = 'Flask (==3.0.0)\nJinja2 >= 3.1, == 3.1.3\nMarkupSafe==2.1.3,==2.1.4\n';
      const list = parseDependencyFile('requirements.txt', content);

      expect(list.dependencies).toEqual([pypi('flask', '3.0.0'), pypi('jinja2', '3.1.3')]);
      expect(list.skipped).toEqual([{ entry: 'MarkupSafe==2.1.3,==2.1.4', line: 3, reason: 'not pinned to one version with ==' }]);
    });

    it('normalises names and merges duplicates', () => {
      const content = 'Django_REST.framework==3.14.0\ndjangorestframework==3.14.0\ndjango-rest-framework==3.14.0\n';

      expect(parseDependencies('requirements.txt', content)).toEqual([
        pypi('django-rest-framework', '3.14.0'),
        pypi('djangorestframework', '3.14.0'),
      ]);
    });

    it('names the line of an invalid requirement', () => {
      const error = rekeyErrorOf(() => parseDependencies('requirements.txt', 'requests==2.31.0\n!invalid\n'));

      expect(error.code).toBe('INVALID_PARAMETERS');
      expect(error.message).toBe('invalid requirements.txt line 2: the line is not a requirement');
    });

    it('names the line of an invalid specifier', () => {
      const error = rekeyErrorOf(() => parseDependencies('requirements.txt', 'requests==2.31.0\n\nflask >= 2.0 <3\n'));

      expect(error.message).toBe('invalid requirements.txt line 3: the line has an invalid version specifier');
    });

    it('reads Windows line endings', () => {
      expect(parseDependencies('requirements.txt', 'six==1.16.0\r\nidna==3.6\r\n')).toEqual([pypi('idna', '3.6'), pypi('six', '1.16.0')]);
    });
  });

  describe('when the file is a poetry.lock', () => {
    it('reads every package table', () => {
      expect(parseDependencies('poetry.lock', fixture('poetry.lock'))).toEqual([
        pypi('certifi', '2023.11.17'),
        pypi('requests', '2.31.0'),
        pypi('ruamel-yaml', '0.18.5'),
        pypi('ruamel-yaml-clib', '0.2.8'),
      ]);
    });

    it('returns nothing for a lock without packages', () => {
      expect(parseDependencies('poetry.lock', '[metadata]\nlock-version = "2.0"\n')).toEqual([]);
    });

    it('names the line of a TOML syntax error', () => {
      const error = rekeyErrorOf(() => parseDependencies('poetry.lock', '[[package]]\nname = "requests"\nversion = 2.31.0\n'));

      expect(error.code).toBe('INVALID_PARAMETERS');
      expect(error.message).toBe('invalid poetry.lock line 3: not valid TOML');
    });

    it('rejects a package without a version', () => {
      const error = rekeyErrorOf(() => parseDependencies('poetry.lock', '[[package]]\nname = "requests"\n'));

      expect(error.message).toBe('invalid poetry.lock: package[0].version is missing (package "requests")');
    });
  });

  describe('when the file is a pnpm-lock.yaml', () => {
    it('reads lockfile 5 keys', () => {
      expect(parseDependencies('pnpm-lock.yaml', fixture('pnpm-lock-v5.yaml'))).toEqual([
        npm('@acme/eslint-config', '2.0.0'),
        npm('@emotion/react', '11.11.1'),
        npm('@testing-library/react', '14.1.2'),
        npm('js-tokens', '4.0.0'),
        npm('loose-envify', '1.4.0'),
        npm('react', '18.2.0'),
        npm('react-dom', '18.2.0'),
        npm('scheduler', '0.23.0'),
      ]);
    });

    it('reads lockfile 6 keys', () => {
      const list = parseDependencyFile('pnpm-lock.yaml', fixture('pnpm-lock-v6.yaml'));

      expect(list.dependencies).toEqual([
        npm('@tanstack/query-core', '5.17.9'),
        npm('@tanstack/react-query', '5.17.9'),
        npm('js-tokens', '4.0.0'),
        npm('loose-envify', '1.4.0'),
        npm('react', '18.2.0'),
      ]);
      expect(list.skipped).toEqual([{ entry: 'file:packages/local-utils', reason: 'a local file or directory, not a registry package' }]);
    });

    it('reads lockfile 9 keys', () => {
      const list = parseDependencyFile('pnpm-lock.yaml', fixture('pnpm-lock-v9.yaml'));

      expect(list.dependencies).toEqual([
        npm('@tanstack/query-core', '5.17.9'),
        npm('@tanstack/react-query', '5.17.9'),
        npm('eslint-config-acme', '2.0.0'),
        npm('js-tokens', '4.0.0'),
        npm('loose-envify', '1.4.0'),
        npm('react', '18.2.0'),
        npm('string-width', '4.2.3'),
      ]);
      expect(list.skipped).toEqual([]);
    });

    it('splits every key style into name and version', () => {
      const cases: Array<[string, number, { name: string; version: string } | undefined]> = [
        ['/react/18.2.0', 5, { name: 'react', version: '18.2.0' }],
        ['/@emotion/react/11.11.1_react@18.2.0', 5, { name: '@emotion/react', version: '11.11.1' }],
        ['/@testing-library/react/14.1.2_biqbaboplfbrettd7655fr4n2y', 5, { name: '@testing-library/react', version: '14.1.2' }],
        ['/styled-jsx/5.1.1_@babel+core@7.23.7+react@18.2.0', 5, { name: 'styled-jsx', version: '5.1.1' }],
        ['/snake_case_pkg/1.0.0-beta.1', 5, { name: 'snake_case_pkg', version: '1.0.0-beta.1' }],
        ['/react@18.2.0', 6, { name: 'react', version: '18.2.0' }],
        ['/@tanstack/react-query@5.17.9(react@18.2.0)', 6, { name: '@tanstack/react-query', version: '5.17.9' }],
        ['/next@14.1.0(@babel/core@7.23.7)(react-dom@18.2.0)(react@18.2.0)', 6, { name: 'next', version: '14.1.0' }],
        ['react@18.2.0', 9, { name: 'react', version: '18.2.0' }],
        ['@tanstack/react-query@5.17.9(react@18.2.0)', 9, { name: '@tanstack/react-query', version: '5.17.9' }],
        ['string-width-cjs@npm:string-width@4.2.3', 9, { name: 'string-width', version: '4.2.3' }],
        ['github.com/acme/eslint-config/5f3c2a1b', 5, undefined],
        ['react', 9, undefined],
      ];

      for (const [key, major, expected] of cases) {
        expect(parsePackageKey(key, major), key).toEqual(expected);
      }
    });

    it('reports a key without a version', () => {
      const list = parseDependencyFile('pnpm-lock.yaml', "lockfileVersion: '9.0'\npackages:\n  react@18.2.0: {}\n  mystery: {}\n");

      expect(list.dependencies).toEqual([npm('react', '18.2.0')]);
      expect(list.skipped).toEqual([{ entry: 'mystery', reason: 'the key names no package version' }]);
    });

    it('rejects an unsupported lockfileVersion', () => {
      const error = rekeyErrorOf(() => parseDependencies('pnpm-lock.yaml', "lockfileVersion: '7.0'\n"));

      expect(error.message).toBe('invalid pnpm-lock.yaml: lockfileVersion "7.0" is not supported, expected 5.x, 6.x or 9.x');
    });

    it('names the line of a YAML syntax error', () => {
      const content = "lockfileVersion: '9.0'\n\npackages:\n\n  react@18.2.0:\n    engines: node: '>=0.10.0'\n";
      const error = rekeyErrorOf(() => parseDependencies('pnpm-lock.yaml', content));

      expect(error.code).toBe('INVALID_PARAMETERS');
      expect(error.message).toBe('invalid pnpm-lock.yaml line 6: not valid YAML');
    });
  });

  describe('when choosing the format', () => {
    it('uses the base name of a path', () => {
      expect(formatOfFileName('services/web/pnpm-lock.yaml')).toBe('pnpm-lock');
      expect(formatOfFileName('C:\\build\\package-lock.json')).toBe('package-lock');
      expect(formatOfFileName('npm-shrinkwrap.json')).toBe('package-lock');
      expect(formatOfFileName('poetry.lock')).toBe('poetry-lock');
      expect(formatOfFileName('requirements.txt')).toBe('requirements');
      expect(formatOfFileName('requirements-dev.txt')).toBe('requirements');
      expect(formatOfFileName('dev-requirements.txt')).toBe('requirements');
      expect(formatOfFileName('Pipfile.lock')).toBeUndefined();
      expect(formatOfFileName('package.json')).toBeUndefined();
      expect(formatOfFileName('notes.txt')).toBeUndefined();
    });

    it('reads an upload without a name by format', () => {
      expect(parseDependencies(undefined, 'six==1.16.0\n', 'requirements')).toEqual([pypi('six', '1.16.0')]);
    });

    it('lets the format win over the name', () => {
      expect(parseDependencies('upload.bin', 'six==1.16.0\n', 'requirements')).toEqual([pypi('six', '1.16.0')]);
    });

    it('rejects an unknown file name', () => {
      const error = rekeyErrorOf(() => parseDependencies('Pipfile.lock', '{}'));

      expect(error.code).toBe('INVALID_PARAMETERS');
      expect(error.message).toBe(
        'cannot tell the dependency format of "Pipfile.lock": name it package-lock.json, requirements.txt, poetry.lock or pnpm-lock.yaml, or pass the format',
      );
    });

    it('rejects an upload without name or format', () => {
      const error = rekeyErrorOf(() => parseDependencies(undefined, 'six==1.16.0\n'));

      expect(error.message).toBe(
        'cannot tell the dependency format of a file without a name: name it package-lock.json, requirements.txt, poetry.lock or pnpm-lock.yaml, or pass the format',
      );
    });

    it('ignores a byte order mark', () => {
      expect(parseDependencies('package-lock.json', '\uFEFF{"lockfileVersion": 3, "packages": {"node_modules/ms": {"version": "2.1.3"}}}')).toEqual([
        npm('ms', '2.1.3'),
      ]);
    });
  });
});

describe('when a dependency file carries a token', () => {
  it('keeps the line text out of errors', () => {
    let message = '';
    try {
      parseDependencies('requirements.txt', 'requests==2.31.0 password=HUNTER2SECRETVALUE\n');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe('invalid requirements.txt line 1: the line has an invalid version specifier');
  });

  it('redacts URL credentials in skipped entries', () => {
    const list = parseDependencyFile('requirements.txt', 'mylib @ git+https://ghp_SECRET000111@github.com/acme/mylib.git\n');
    expect(list.skipped.map((entry) => entry.entry)).toEqual(['mylib @ git+https://[redacted]@github.com/acme/mylib.git']);
  });
});
