import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { claimValues, discoverJwksUrl, grantFor, OidcVerifier, readOidcConfig, type OidcConfig, type OidcGrant } from '../../src/api/oidc.js';
import { startTestIssuer, unsecuredToken, type TestIssuer } from '../support/oidc.js';

const BASE_ENV = {
  REKEY_OIDC_ISSUER: 'https://login.example.com/realms/ops',
  REKEY_OIDC_AUDIENCE: 'rekey-api',
  REKEY_OIDC_ROLE_MAP: '{"ops": "operator"}',
};

describe('readOidcConfig', () => {
  it('returns null without an issuer', () => {
    expect(readOidcConfig({})).toBeNull();
    expect(readOidcConfig({ REKEY_OIDC_ISSUER: '' })).toBeNull();
  });

  it('applies the defaults', () => {
    expect(readOidcConfig(BASE_ENV)).toEqual({
      issuer: 'https://login.example.com/realms/ops',
      audience: 'rekey-api',
      jwksUrl: undefined,
      roleClaim: 'groups',
      roleMap: new Map([['ops', { role: 'operator', environments: null }]]),
      algorithms: ['RS256', 'ES256'],
      clockToleranceSeconds: 30,
    } satisfies OidcConfig);
  });

  it('reads every setting', () => {
    const config = readOidcConfig({
      ...BASE_ENV,
      REKEY_OIDC_JWKS_URL: 'https://login.example.com/keys',
      REKEY_OIDC_ROLE_CLAIM: 'realm_access.roles',
      REKEY_OIDC_ROLE_MAP: '{"ops": {"role": "admin", "environments": ["prod"]}, "dev": "viewer"}',
      REKEY_OIDC_ALGORITHMS: 'ES384, EdDSA',
      REKEY_OIDC_CLOCK_TOLERANCE_SECONDS: '0',
    });
    expect(config?.jwksUrl).toBe('https://login.example.com/keys');
    expect(config?.roleClaim).toBe('realm_access.roles');
    expect(config?.roleMap).toEqual(new Map([['ops', { role: 'admin', environments: ['prod'] }], ['dev', { role: 'viewer', environments: null }]]));
    expect(config?.algorithms).toEqual(['ES384', 'EdDSA']);
    expect(config?.clockToleranceSeconds).toBe(0);
  });

  const invalid: Array<[string, Record<string, string>, string]> = [
    ['a missing audience', { ...BASE_ENV, REKEY_OIDC_AUDIENCE: '' }, 'REKEY_OIDC_AUDIENCE is missing'],
    ['a missing role map', { ...BASE_ENV, REKEY_OIDC_ROLE_MAP: '' }, 'REKEY_OIDC_ROLE_MAP is missing'],
    ['an http issuer off loopback', { ...BASE_ENV, REKEY_OIDC_ISSUER: 'http://login.example.com' }, 'REKEY_OIDC_ISSUER="http://login.example.com" must be an https URL'],
    ['an issuer that is no URL', { ...BASE_ENV, REKEY_OIDC_ISSUER: 'login.example.com' }, 'REKEY_OIDC_ISSUER="login.example.com" is not a valid URL'],
    ['an issuer with a query', { ...BASE_ENV, REKEY_OIDC_ISSUER: 'https://login.example.com/?tenant=a' }, 'REKEY_OIDC_ISSUER must not contain credentials, a query or a fragment'],
    ['an http JWKS URL off loopback', { ...BASE_ENV, REKEY_OIDC_JWKS_URL: 'http://keys.example.com/jwks' }, 'REKEY_OIDC_JWKS_URL="http://keys.example.com/jwks" must be an https URL'],
    ['HS256 in the algorithms', { ...BASE_ENV, REKEY_OIDC_ALGORITHMS: 'RS256,HS256' }, 'REKEY_OIDC_ALGORITHMS="RS256,HS256" is invalid'],
    ['none in the algorithms', { ...BASE_ENV, REKEY_OIDC_ALGORITHMS: 'none' }, 'REKEY_OIDC_ALGORITHMS="none" is invalid'],
    ['a role map that is not JSON', { ...BASE_ENV, REKEY_OIDC_ROLE_MAP: 'ops=admin' }, 'REKEY_OIDC_ROLE_MAP is not valid JSON'],
    ['a role map that is an array', { ...BASE_ENV, REKEY_OIDC_ROLE_MAP: '["admin"]' }, 'REKEY_OIDC_ROLE_MAP must be a JSON object'],
    ['an empty role map', { ...BASE_ENV, REKEY_OIDC_ROLE_MAP: '{}' }, 'REKEY_OIDC_ROLE_MAP maps no claim value to a role'],
    ['an unknown role', { ...BASE_ENV, REKEY_OIDC_ROLE_MAP: '{"ops": "root"}' }, 'REKEY_OIDC_ROLE_MAP["ops"] must be a role'],
    ['an unknown grant key', { ...BASE_ENV, REKEY_OIDC_ROLE_MAP: '{"ops": {"role": "admin", "env": ["a"]}}' }, 'REKEY_OIDC_ROLE_MAP["ops"] has unknown key "env"'],
    ['empty environments', { ...BASE_ENV, REKEY_OIDC_ROLE_MAP: '{"ops": {"role": "admin", "environments": []}}' }, 'REKEY_OIDC_ROLE_MAP["ops"].environments must be a non-empty array'],
    ['a large clock tolerance', { ...BASE_ENV, REKEY_OIDC_CLOCK_TOLERANCE_SECONDS: '3600' }, 'REKEY_OIDC_CLOCK_TOLERANCE_SECONDS="3600" is invalid'],
  ];
  for (const [name, env, message] of invalid) {
    it(`rejects ${name}`, () => {
      expect(() => readOidcConfig(env)).toThrow(ConfigError);
      expect(() => readOidcConfig(env)).toThrow(message);
    });
  }

  it('accepts http on loopback', () => {
    expect(readOidcConfig({ ...BASE_ENV, REKEY_OIDC_ISSUER: 'http://127.0.0.1:8443' })?.issuer).toBe('http://127.0.0.1:8443');
    expect(readOidcConfig({ ...BASE_ENV, REKEY_OIDC_ISSUER: 'http://[::1]:8443' })?.issuer).toBe('http://[::1]:8443');
  });
});

describe('claimValues', () => {
  it('reads a string as one value', () => {
    expect(claimValues({ role: 'ops' }, 'role')).toEqual(['ops']);
  });

  it('keeps only the strings of an array', () => {
    expect(claimValues({ groups: ['ops', 7, null, 'dev'] }, 'groups')).toEqual(['ops', 'dev']);
  });

  it('follows a dotted path', () => {
    expect(claimValues({ realm_access: { roles: ['ops'] } }, 'realm_access.roles')).toEqual(['ops']);
  });

  it('prefers a top-level claim whose name has dots', () => {
    expect(claimValues({ 'https://example.com/roles': ['ops'] }, 'https://example.com/roles')).toEqual(['ops']);
  });

  it('returns nothing for other types or a missing claim', () => {
    expect(claimValues({ groups: { ops: true } }, 'groups')).toEqual([]);
    expect(claimValues({}, 'groups')).toEqual([]);
    expect(claimValues({}, 'constructor')).toEqual([]);
  });
});

describe('grantFor', () => {
  const roleMap = new Map<string, OidcGrant>([
    ['read', { role: 'viewer', environments: null }],
    ['ops-staging', { role: 'operator', environments: ['staging'] }],
    ['ops-prod', { role: 'operator', environments: ['prod'] }],
    ['ops', { role: 'operator', environments: null }],
    ['admin-dev', { role: 'admin', environments: ['dev'] }],
  ]);

  it('returns null when no value maps', () => {
    expect(grantFor(['nobody'], roleMap)).toBeNull();
    expect(grantFor([], roleMap)).toBeNull();
  });

  it('takes the highest role', () => {
    expect(grantFor(['read', 'admin-dev', 'ops'], roleMap)).toEqual({ role: 'admin', environments: ['dev'] });
  });

  it('adds up environments of the same role', () => {
    expect(grantFor(['ops-staging', 'read', 'ops-prod'], roleMap)).toEqual({ role: 'operator', environments: ['prod', 'staging'] });
  });

  it('widens to every environment when one grant has no list', () => {
    expect(grantFor(['ops-staging', 'ops'], roleMap)).toEqual({ role: 'operator', environments: null });
  });
});

describe('discoverJwksUrl', () => {
  let issuer: TestIssuer;

  beforeAll(async () => {
    issuer = await startTestIssuer();
  });

  afterAll(async () => {
    await issuer.close();
  });

  it('reads jwks_uri from the issuer', async () => {
    expect(await discoverJwksUrl(issuer.url)).toBe(issuer.jwksUrl);
  });

  it('compares the issuer exactly, trailing slash included', async () => {
    await expect(discoverJwksUrl(`${issuer.url}/`)).rejects.toThrow(`names the issuer "${issuer.url}", not the configured ${issuer.url}/`);
  });

  const broken: Array<[string, { status: number; body: string; headers?: Record<string, string> }, string]> = [
    ['another issuer', { status: 200, body: '{"issuer": "https://evil.example.com", "jwks_uri": "https://evil.example.com/jwks"}' }, 'names the issuer "https://evil.example.com", not the configured'],
    ['an http jwks_uri off loopback', { status: 200, body: '{"issuer": "ISSUER", "jwks_uri": "http://keys.example.com/jwks"}' }, 'has an unusable jwks_uri'],
    ['no jwks_uri', { status: 200, body: '{"issuer": "ISSUER"}' }, 'has no jwks_uri'],
    ['a body that is not JSON', { status: 200, body: '<html>' }, 'did not return JSON'],
    ['a 404', { status: 404, body: '{}' }, 'returned HTTP 404, expected 200'],
    ['a redirect', { status: 302, body: '', headers: { location: 'http://127.0.0.1:1/.well-known/openid-configuration' } }, 'fetch failed'],
  ];
  for (const [name, reply, message] of broken) {
    it(`rejects ${name}`, async () => {
      issuer.stubs.set('/.well-known/openid-configuration', { ...reply, body: reply.body.replace('ISSUER', issuer.url) });
      try {
        await expect(discoverJwksUrl(issuer.url)).rejects.toThrow(message);
      } finally {
        issuer.stubs.clear();
      }
    });
  }
});

describe('OidcVerifier', () => {
  let issuer: TestIssuer;

  beforeAll(async () => {
    issuer = await startTestIssuer();
  });

  afterAll(async () => {
    await issuer.close();
  });

  function verifier(env: Record<string, string> = {}, discoveryRetryMs?: number): OidcVerifier {
    const config = readOidcConfig({
      REKEY_OIDC_ISSUER: issuer.url,
      REKEY_OIDC_AUDIENCE: issuer.audience,
      REKEY_OIDC_ROLE_MAP: '{"ops": "operator"}',
      ...env,
    });
    return new OidcVerifier(config!, { discoveryRetryMs });
  }

  it('rejects alg none without a request', async () => {
    issuer.requests.length = 0;
    const token = unsecuredToken({ iss: issuer.url, aud: issuer.audience, sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600, groups: ['ops'] });

    const result = await verifier().verify(token);

    expect(result).toEqual({ status: 'rejected', httpStatus: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its algorithm is not accepted; accepted: RS256, ES256' });
    expect(issuer.requests).toEqual([]);
  });

  describe('when discovery fails', () => {
    afterEach(() => {
      issuer.stubs.clear();
    });

    it('repeats the failure within the retry delay', async () => {
      issuer.requests.length = 0;
      issuer.stubs.set('/.well-known/openid-configuration', { status: 503, body: '{}' });
      const checker = verifier({}, 60_000);
      const token = await issuer.sign({ claims: { groups: ['ops'] } });

      const first = await checker.verify(token);
      issuer.stubs.clear();
      const second = await checker.verify(token);

      expect(first.status).toBe('unavailable');
      expect(second.status).toBe('unavailable');
      expect(first.status === 'unavailable' ? first.detail : '').toBe(
        `the OIDC issuer's discovery document could not be used: GET ${issuer.url}/.well-known/openid-configuration returned HTTP 503, expected 200`,
      );
      expect(issuer.requests).toEqual(['/.well-known/openid-configuration']);
    });

    it('asks again after the retry delay', async () => {
      issuer.stubs.set('/.well-known/openid-configuration', { status: 503, body: '{}' });
      const checker = verifier({}, 0);
      const token = await issuer.sign({ claims: { groups: ['ops'] } });

      expect((await checker.verify(token)).status).toBe('unavailable');
      issuer.stubs.clear();
      expect((await checker.verify(token)).status).toBe('valid');
    });
  });

  it('uses an explicit JWKS URL without discovery', async () => {
    issuer.requests.length = 0;
    const result = await verifier({ REKEY_OIDC_JWKS_URL: issuer.jwksUrl }).verify(await issuer.sign({ claims: { groups: ['ops'] } }));

    expect(result).toEqual({ status: 'valid', subject: 'alice', grant: { role: 'operator', environments: null } });
    expect(issuer.requests).toEqual(['/jwks']);
  });

  it('rejects an algorithm left out of the allow-list', async () => {
    const result = await verifier({ REKEY_OIDC_ALGORITHMS: 'ES256' }).verify(await issuer.sign({ claims: { groups: ['ops'] } }));
    expect(result).toEqual({ status: 'rejected', httpStatus: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its algorithm is not accepted; accepted: ES256' });
  });

  it('reads the role from a nested claim', async () => {
    const result = await verifier({ REKEY_OIDC_ROLE_CLAIM: 'realm_access.roles' }).verify(await issuer.sign({ claims: { realm_access: { roles: ['ops'] } } }));
    expect(result.status).toBe('valid');
  });

  it('rejects a subject that cannot be an actor', async () => {
    const result = await verifier().verify(await issuer.sign({ claims: { sub: 'alice smith', groups: ['ops'] } }));
    expect(result).toEqual({ status: 'rejected', httpStatus: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its "sub" claim must be 1 to 255 visible ASCII characters' });
  });

  it('tolerates clock skew within the setting', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.sign({ claims: { groups: ['ops'], exp: now - 10 } });

    expect((await verifier({ REKEY_OIDC_CLOCK_TOLERANCE_SECONDS: '60' }).verify(token)).status).toBe('valid');
    expect((await verifier({ REKEY_OIDC_CLOCK_TOLERANCE_SECONDS: '0' }).verify(token)).status).toBe('rejected');
  });

  it('reports an unreachable JWKS as unavailable', async () => {
    const result = await verifier({ REKEY_OIDC_JWKS_URL: 'http://127.0.0.1:1/jwks' }).verify(await issuer.sign({ claims: { groups: ['ops'] } }));
    expect(result.status).toBe('unavailable');
  });
});
