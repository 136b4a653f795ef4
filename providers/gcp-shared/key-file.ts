import { importPKCS8, SignJWT } from 'jose';
import { RekeyError } from '../../src/errors.js';
import { ASSERTION_LIFETIME_SECONDS } from './constants.js';

/**
 * A service-account key file (`TYPE_GOOGLE_CREDENTIALS_FILE`), as IAM returns it base64-encoded
 * in `privateKeyData`. Every field is a string, and `private_key` is the PEM PKCS#8 private key.
 */
export interface ServiceAccountKeyFile {
  type: 'service_account';
  project_id?: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id?: string;
  token_uri?: string;
  [field: string]: string | undefined;
}

/**
 * Parses a service-account key file. `source` names it in errors (a path, "the new key of …"),
 * which never quote the file's text, because it contains the private key.
 */
export function parseServiceAccountKeyFile(text: string, source: string): ServiceAccountKeyFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RekeyError('INVALID_PARAMETERS', `${source} is not valid JSON: expected a service-account key file`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RekeyError('INVALID_PARAMETERS', `${source} is not a JSON object: expected a service-account key file`);
  }

  const fields = parsed as Record<string, unknown>;
  if (fields.type !== 'service_account') {
    throw new RekeyError('INVALID_PARAMETERS', `${source} has type ${JSON.stringify(fields.type ?? null)}: expected a service-account key file (type service_account)`);
  }
  for (const name of ['private_key_id', 'private_key', 'client_email']) {
    if (typeof fields[name] !== 'string' || fields[name] === '') {
      throw new RekeyError('INVALID_PARAMETERS', `${source} has no ${name}: expected a complete service-account key file`);
    }
  }

  const keyFile: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === 'string') keyFile[name] = value;
  }
  return keyFile as ServiceAccountKeyFile;
}

/**
 * Signs the JWT that the OAuth 2.0 JWT-bearer grant (RFC 7523) exchanges for an access token. It
 * is signed RS256 with the key's private key. Its `kid` is the key id, so that the token endpoint
 * checks the signature against that key alone. The issuer is the account and the audience is the
 * token endpoint.
 */
export async function signAssertion(keyFile: ServiceAccountKeyFile, audience: string, scope: string): Promise<string> {
  let privateKey;
  try {
    privateKey = await importPKCS8(keyFile.private_key, 'RS256');
  } catch {
    throw new RekeyError('INVALID_PARAMETERS', `the private key of key ${keyFile.private_key_id} of ${keyFile.client_email} is not a PEM PKCS#8 RSA key`);
  }

  const issuedAt = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: keyFile.private_key_id })
    .setIssuer(keyFile.client_email)
    .setAudience(audience)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + ASSERTION_LIFETIME_SECONDS)
    .sign(privateKey);
}
