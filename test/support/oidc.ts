import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/** A key pair the test issuer can sign with. */
interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export interface SignOptions {
  /**
   * Which key signs: the published RSA or EC key, an RSA key the JWKS does not list, or an
   * unpublished RSA key that claims the published RSA key's kid.
   */
  key?: 'rsa' | 'ec' | 'unlisted' | 'impostor';
  /** Claims to set or override; a claim set to undefined is left out. */
  claims?: Record<string, unknown>;
  /** Header fields to set or override. */
  header?: Record<string, unknown>;
}

/** A reply the test sets for one path, in place of the issuer's normal one. */
export interface StubbedReply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export interface TestIssuer {
  /** The issuer URL, `http://127.0.0.1:<port>`, as the `iss` claim carries it. */
  url: string;
  jwksUrl: string;
  audience: string;
  /** Paths of the requests the server received, in order. */
  requests: string[];
  /** Replies by path that replace the normal ones until removed. */
  stubs: Map<string, StubbedReply>;
  /** Signs a token with fresh `iat`, `exp` (in 10 minutes), `iss`, `aud` and `sub` unless `claims` overrides them. */
  sign(options?: SignOptions): Promise<string>;
  /** The published RSA public key as SPKI PEM, for signing a token with it as an HMAC secret. */
  rsaPublicKeyPem(): Promise<string>;
  close(): Promise<void>;
}

const TOKEN_LIFETIME_SECONDS = 600;

async function newKey(kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey };
}

async function publicJwk(key: SigningKey): Promise<JWK> {
  return { ...(await exportJWK(key.publicKey)), kid: key.kid, alg: key.alg, use: 'sig' };
}

/**
 * Starts an OpenID provider on 127.0.0.1 with a random port: a discovery document at
 * `/.well-known/openid-configuration` and a JWKS at `/jwks` with one RS256 and one ES256 key.
 */
export async function startTestIssuer(audience = 'rekey-api'): Promise<TestIssuer> {
  const keys = {
    rsa: await newKey('rsa-1', 'RS256'),
    ec: await newKey('ec-1', 'ES256'),
    unlisted: await newKey('rsa-unlisted', 'RS256'),
    impostor: await newKey('rsa-1', 'RS256'),
  };
  const jwks = JSON.stringify({ keys: [await publicJwk(keys.rsa), await publicJwk(keys.ec)] });
  const requests: string[] = [];
  const stubs = new Map<string, StubbedReply>();
  let url = '';

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = request.url ?? '';
    requests.push(path);
    const stub = stubs.get(path);
    if (stub !== undefined) {
      response.writeHead(stub.status, { 'content-type': 'application/json', ...stub.headers }).end(stub.body);
      return;
    }
    if (path === '/.well-known/openid-configuration') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: url, jwks_uri: `${url}/jwks` }));
      return;
    }
    if (path === '/jwks') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
      return;
    }
    response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    jwksUrl: `${url}/jwks`,
    audience,
    requests,
    stubs,
    async sign(options: SignOptions = {}): Promise<string> {
      const key = keys[options.key ?? 'rsa'];
      const now = Math.floor(Date.now() / 1000);
      const claims: Record<string, unknown> = { iss: url, aud: audience, sub: 'alice', iat: now, exp: now + TOKEN_LIFETIME_SECONDS, ...options.claims };
      for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
      return new SignJWT(claims as JWTPayload)
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...options.header })
        .sign(key.privateKey);
    },
    rsaPublicKeyPem: () => exportSPKI(keys.rsa.publicKey),
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((error) => (error === undefined ? resolve() : reject(error)));
    }),
  };
}

/** Encodes a token with `alg: none` and no signature, which a verifier must reject. */
export function unsecuredToken(claims: Record<string, unknown>): string {
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims)}.`;
}
