import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { ConfigError } from '../config.js';
import type { Env } from '../contracts.js';
import { ROLES, roleAllows, type Role } from './tokens.js';

/**
 * Asymmetric algorithms REKEY_OIDC_ALGORITHMS may list. HMAC algorithms are left out on purpose:
 * a verifier that accepts HS256 can be fooled by a token "signed" with the issuer's public key.
 */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export const DEFAULT_ALGORITHMS = ['RS256', 'ES256'];
export const DEFAULT_ROLE_CLAIM = 'groups';
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;
const MAX_CLOCK_TOLERANCE_SECONDS = 300;
/** Bounds the discovery and JWKS requests, so a slow issuer fails the request instead of holding it. */
const FETCH_TIMEOUT_MS = 5000;
/** jose refetches the JWKS at most this often when a token names a kid it has not seen. */
const JWKS_COOLDOWN_MS = 30_000;
/** jose refetches the JWKS once the cached copy is this old. */
const JWKS_MAX_AGE_MS = 10 * 60_000;
/** How long a failed discovery is repeated to callers before the issuer is asked again. */
const DISCOVERY_RETRY_MS = 5000;
/** A discovery document is a few kilobytes; anything much larger is not one. */
const MAX_DISCOVERY_BYTES = 256 * 1024;
/** Subjects become audit actors, so they are limited to visible ASCII and a sane length. */
const SUBJECT_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Role that a claim value grants, for every environment or only the listed ones. */
export interface OidcGrant {
  role: Role;
  environments: string[] | null;
}

export interface OidcConfig {
  /** Compared exactly with the `iss` claim, and the base of the discovery document's URL. */
  issuer: string;
  audience: string;
  /** Set explicitly, or read from the issuer's discovery document on first use. */
  jwksUrl: string | undefined;
  /** Claim carrying the role or groups: a top-level claim name, or a dotted path such as `realm_access.roles`. */
  roleClaim: string;
  /** Claim value to grant. */
  roleMap: Map<string, OidcGrant>;
  algorithms: string[];
  clockToleranceSeconds: number;
}

/**
 * Reads the OIDC settings: null when REKEY_OIDC_ISSUER is unset. Throws a ConfigError naming the
 * variable when a setting is missing or invalid, so a half-configured OIDC stops the API at start-up.
 */
export function readOidcConfig(env: Env): OidcConfig | null {
  const issuer = nonEmpty(env.REKEY_OIDC_ISSUER);
  if (issuer === undefined) return null;
  requireFetchableUrl('REKEY_OIDC_ISSUER', issuer);

  const audience = nonEmpty(env.REKEY_OIDC_AUDIENCE);
  if (audience === undefined) throw new ConfigError('REKEY_OIDC_AUDIENCE is missing: set it to the audience (aud) your issuer puts in tokens for rekey');

  const jwksUrl = nonEmpty(env.REKEY_OIDC_JWKS_URL);
  if (jwksUrl !== undefined) requireFetchableUrl('REKEY_OIDC_JWKS_URL', jwksUrl);

  const mapText = nonEmpty(env.REKEY_OIDC_ROLE_MAP);
  if (mapText === undefined) throw new ConfigError('REKEY_OIDC_ROLE_MAP is missing: set it to a JSON object from claim values to roles, such as {"rekey-admins": "admin"}');

  return {
    issuer,
    audience,
    jwksUrl,
    roleClaim: nonEmpty(env.REKEY_OIDC_ROLE_CLAIM) ?? DEFAULT_ROLE_CLAIM,
    roleMap: parseRoleMap(mapText),
    algorithms: parseAlgorithms(nonEmpty(env.REKEY_OIDC_ALGORITHMS)),
    clockToleranceSeconds: parseClockTolerance(nonEmpty(env.REKEY_OIDC_CLOCK_TOLERANCE_SECONDS)),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** Requires an https URL; plain http only on a loopback host, where no network sits between. */
function requireFetchableUrl(name: string, text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`${name}="${text}" is not a valid URL`);
  }
  const loopbackHttp = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) throw new ConfigError(`${name}="${text}" must be an https URL (plain http is accepted only on 127.0.0.1, ::1 or localhost)`);
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ConfigError(`${name} must not contain credentials, a query or a fragment`);
  }
}

function parseRoleMap(text: string): Map<string, OidcGrant> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('REKEY_OIDC_ROLE_MAP is not valid JSON: expected an object such as {"rekey-admins": "admin", "ci": {"role": "operator", "environments": ["staging"]}}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError('REKEY_OIDC_ROLE_MAP must be a JSON object from claim values to roles');

  const map = new Map<string, OidcGrant>();
  for (const [value, grant] of Object.entries(parsed)) map.set(value, parseGrant(value, grant));
  if (map.size === 0) throw new ConfigError('REKEY_OIDC_ROLE_MAP maps no claim value to a role, so no OIDC token could be accepted');
  return map;
}

function parseGrant(value: string, grant: unknown): OidcGrant {
  const where = `REKEY_OIDC_ROLE_MAP["${value}"]`;
  const isRole = (role: unknown): role is Role => typeof role === 'string' && (ROLES as readonly string[]).includes(role);
  if (isRole(grant)) return { role: grant, environments: null };
  if (typeof grant !== 'object' || grant === null || Array.isArray(grant)) throw new ConfigError(`${where} must be a role (${ROLES.join(', ')}) or an object {"role", "environments"}`);

  const { role, environments, ...rest } = grant as Record<string, unknown>;
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length > 0) throw new ConfigError(`${where} has unknown key "${unknownKeys[0]}": expected only "role" and "environments"`);
  if (!isRole(role)) throw new ConfigError(`${where}.role must be one of ${ROLES.join(', ')}`);
  if (environments === undefined) return { role, environments: null };
  if (!Array.isArray(environments) || environments.length === 0 || !environments.every((name) => typeof name === 'string' && name !== '')) {
    throw new ConfigError(`${where}.environments must be a non-empty array of environment names; leave it out for every environment`);
  }
  return { role, environments: environments as string[] };
}

function parseAlgorithms(text: string | undefined): string[] {
  if (text === undefined) return DEFAULT_ALGORITHMS;
  const algorithms = text.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const rejected = algorithms.find((name) => !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(name));
  if (rejected !== undefined || algorithms.length === 0) {
    throw new ConfigError(`REKEY_OIDC_ALGORITHMS="${text}" is invalid: list one or more of ${ASYMMETRIC_ALGORITHMS.join(', ')} (HMAC algorithms and "none" are never accepted)`);
  }
  return algorithms;
}

function parseClockTolerance(text: string | undefined): number {
  if (text === undefined) return DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > MAX_CLOCK_TOLERANCE_SECONDS) {
    throw new ConfigError(`REKEY_OIDC_CLOCK_TOLERANCE_SECONDS="${text}" is invalid: expected an integer from 0 to ${MAX_CLOCK_TOLERANCE_SECONDS}`);
  }
  return value;
}

/** The outcome of checking a bearer JWT. */
export type OidcResult =
  | { status: 'valid'; subject: string; grant: OidcGrant }
  /** The token is not acceptable: 401 for the token itself, 403 for a valid token without a mapped role. */
  | { status: 'rejected'; httpStatus: 401 | 403; code: string; detail: string }
  /** The issuer's discovery document or JWKS could not be fetched, so no token can be checked now. */
  | { status: 'unavailable'; detail: string; cause: unknown };

/**
 * Verifies JWTs from one configured issuer against its JWKS and maps a claim to a rekey role.
 * Keys come only from the configured JWKS URL, or from the discovery document at the configured
 * issuer, never from a URL in the token (`iss`, `jku` or `x5u`).
 */
export class OidcVerifier {
  #keys: Promise<JWTVerifyGetKey> | undefined;
  /** The last failed discovery and when it failed, repeated to callers until the retry delay passes. */
  #failure: { error: unknown; at: number } | undefined;
  readonly #discoveryRetryMs: number;

  /** `discoveryRetryMs` is how long a failed discovery is repeated before the issuer is asked again. */
  constructor(readonly config: OidcConfig, options: { discoveryRetryMs?: number } = {}) {
    this.#discoveryRetryMs = options.discoveryRetryMs ?? DISCOVERY_RETRY_MS;
  }

  async verify(jwt: string): Promise<OidcResult> {
    // The keys are resolved inside jwtVerify, after it has checked the header's algorithm, so a
    // token with `alg: none` or HS256 is rejected without any request to the issuer.
    const keys: JWTVerifyGetKey = async (header, token) => {
      let keySet: JWTVerifyGetKey;
      try {
        keySet = await this.#keySet();
      } catch (error) {
        throw new KeysUnavailableError(error);
      }
      return keySet(header, token);
    };

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, keys, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        algorithms: this.config.algorithms,
        clockTolerance: this.config.clockToleranceSeconds,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      return describeVerifyError(error, this.config);
    }

    const subject = payload.sub;
    if (typeof subject !== 'string' || !SUBJECT_PATTERN.test(subject)) {
      return { status: 'rejected', httpStatus: 401, code: 'UNAUTHENTICATED', detail: 'OIDC token rejected: its "sub" claim must be 1 to 255 visible ASCII characters' };
    }
    const grant = grantFor(claimValues(payload, this.config.roleClaim), this.config.roleMap);
    if (grant === null) {
      return { status: 'rejected', httpStatus: 403, code: 'FORBIDDEN', detail: `oidc:${subject} has no rekey role: no value of its "${this.config.roleClaim}" claim is in REKEY_OIDC_ROLE_MAP` };
    }
    return { status: 'valid', subject, grant };
  }

  /**
   * Returns the issuer's key set, created once. A failed discovery is kept only for the retry
   * delay, so the API recovers without a restart, while a flood of tokens during an outage
   * sends at most one discovery request to the issuer per delay.
   */
  #keySet(): Promise<JWTVerifyGetKey> {
    if (this.#keys !== undefined) return this.#keys;
    if (this.#failure !== undefined && Date.now() - this.#failure.at < this.#discoveryRetryMs) return Promise.reject(this.#failure.error);

    const creating = this.#jwksUrl().then((url) =>
      createRemoteJWKSet(new URL(url), { timeoutDuration: FETCH_TIMEOUT_MS, cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_MAX_AGE_MS }));
    this.#keys = creating;
    creating.then(() => {
      this.#failure = undefined;
    }, (error: unknown) => {
      this.#failure = { error, at: Date.now() };
      if (this.#keys === creating) this.#keys = undefined;
    });
    return creating;
  }

  async #jwksUrl(): Promise<string> {
    if (this.config.jwksUrl !== undefined) return this.config.jwksUrl;
    return discoverJwksUrl(this.config.issuer);
  }
}

/**
 * Reads `jwks_uri` from the OpenID Provider configuration at the issuer
 * (`<issuer>/.well-known/openid-configuration`, OpenID Connect Discovery 1.0, section 4). The
 * document must name the same issuer, and a redirect is an error, so the keys always come from
 * the location that the configured issuer publishes.
 */
export async function discoverJwksUrl(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
  if (response.status !== 200) throw new Error(`GET ${url} returned HTTP ${response.status}, expected 200`);

  const text = await response.text();
  if (Buffer.byteLength(text) > MAX_DISCOVERY_BYTES) throw new Error(`GET ${url} returned more than ${MAX_DISCOVERY_BYTES} bytes`);
  let document: { issuer?: unknown; jwks_uri?: unknown };
  try {
    document = JSON.parse(text) as typeof document;
  } catch {
    throw new Error(`GET ${url} did not return JSON`);
  }
  if (document.issuer !== issuer) throw new Error(`the discovery document at ${url} names the issuer ${JSON.stringify(document.issuer)}, not the configured ${issuer}`);
  if (typeof document.jwks_uri !== 'string') throw new Error(`the discovery document at ${url} has no jwks_uri`);
  try {
    requireFetchableUrl('jwks_uri', document.jwks_uri);
  } catch (error) {
    throw new Error(`the discovery document at ${url} has an unusable jwks_uri: ${(error as Error).message}`, { cause: error });
  }
  return document.jwks_uri;
}

/** The discovery document could not be fetched or used, so the JWKS URL is unknown. */
class KeysUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`the OIDC issuer's discovery document could not be used: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'KeysUnavailableError';
  }
}

/** Turns a jose verification error into a rejection; errors that are not about the token mean the keys are unavailable. */
function describeVerifyError(error: unknown, config: OidcConfig): OidcResult {
  if (error instanceof KeysUnavailableError) return { status: 'unavailable', detail: error.message, cause: error.cause };
  const reject = (detail: string, code = 'UNAUTHENTICATED'): OidcResult => ({ status: 'rejected', httpStatus: 401, code, detail: `OIDC token rejected: ${detail}` });
  if (error instanceof errors.JWTExpired) return reject('it has expired', 'TOKEN_EXPIRED');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return reject(`it is not from the configured issuer ${config.issuer}`);
    if (error.claim === 'aud') return reject(`its audience is not ${config.audience}`);
    return reject(`its "${error.claim}" claim is ${error.reason === 'missing' ? 'missing' : 'invalid'}`);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return reject(`its algorithm is not accepted; accepted: ${config.algorithms.join(', ')}`);
  if (error instanceof errors.JWSSignatureVerificationFailed) return reject('its signature does not verify');
  if (error instanceof errors.JWKSNoMatchingKey) return reject("no key of the issuer's JWKS matches its kid and algorithm");
  if (error instanceof errors.JWKSMultipleMatchingKeys) return reject("several keys of the issuer's JWKS match it; it must name a kid");
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) return reject('it is not a valid signed JWT');
  return { status: 'unavailable', detail: `the OIDC issuer's keys could not be used: ${(error as Error).message}`, cause: error };
}

/** Reads the claim as a list of strings: a string claim is one value, other types count as none. */
export function claimValues(payload: JWTPayload, claim: string): string[] {
  let value: unknown = Object.hasOwn(payload, claim) ? payload[claim] : undefined;
  if (value === undefined && claim.includes('.')) {
    value = claim.split('.').reduce<unknown>((node, key) => (typeof node === 'object' && node !== null && Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined), payload);
  }
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}

/**
 * Returns the grant of the highest role that any claim value maps to, or null if none maps.
 * Among values that map to that role, the environments add up (every environment if one of them
 * has no list). Grants of lower roles are dropped, so the result never exceeds one grant's role.
 */
export function grantFor(values: string[], roleMap: Map<string, OidcGrant>): OidcGrant | null {
  const grants = values.flatMap((value) => roleMap.get(value) ?? []);
  if (grants.length === 0) return null;

  const role = grants.map((grant) => grant.role).reduce((highest, candidate) => (roleAllows(candidate, highest) ? candidate : highest));
  const top = grants.filter((grant) => grant.role === role);
  if (top.some((grant) => grant.environments === null)) return { role, environments: null };
  return { role, environments: [...new Set(top.flatMap((grant) => grant.environments ?? []))].sort() };
}
