import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway certificate authority and a server certificate it signed for 127.0.0.1. */
export interface TestAuthority {
  /** Path of the CA certificate (PEM), for REKEY_AZURE_CA_FILE. */
  caFile: string;
  /** The server's private key and certificate (PEM), for an HTTPS server. */
  serverKey: string;
  serverCert: string;
  /** Removes the temporary folder with the files. */
  remove(): void;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

/**
 * Creates a CA and a server certificate for IP 127.0.0.1, both valid for one day, with the
 * openssl command. @azure/identity rejects an http authority host, so the Azure fake serves HTTPS
 * and rekey trusts this CA through its CA file setting. The keys exist only in a temporary folder.
 */
export function createTestAuthority(): TestAuthority {
  const folder = mkdtempSync(join(tmpdir(), 'rekey-azure-tls-'));
  const file = (name: string): string => join(folder, name);

  openssl([
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca-key.pem'), '-out', file('ca.pem'), '-days', '1',
    '-subj', '/CN=rekey test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('server-key.pem'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  openssl([
    'x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca-key.pem'), '-CAcreateserial',
    '-out', file('server.pem'), '-days', '1', '-extfile', file('server.ext'),
  ]);

  return {
    caFile: file('ca.pem'),
    serverKey: readFileSync(file('server-key.pem'), 'utf8'),
    serverCert: readFileSync(file('server.pem'), 'utf8'),
    remove: () => rmSync(folder, { recursive: true, force: true }),
  };
}

/** The token endpoint's response to a client credentials request: the status and the first AADSTS code of an error. */
export interface TokenAnswer {
  status: number;
  aadsts: number | null;
}

/**
 * Requests a Graph token from the fake's token endpoint over HTTPS as `clientId` with `secret`,
 * the way a consumer of the rotated secret signs in, and returns the status and AADSTS code.
 */
export function requestToken(authorityUrl: string, tenantId: string, caFile: string, clientId: string, secret: string): Promise<TokenAnswer> {
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, scope: 'https://graph.microsoft.com/.default' }).toString();
  return new Promise((resolve, reject) => {
    const request = httpsRequest(new URL(`/${tenantId}/oauth2/v2.0/token`, authorityUrl), {
      method: 'POST',
      ca: readFileSync(caFile, 'utf8'),
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
    }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error_codes?: number[] };
        resolve({ status: response.statusCode ?? 0, aadsts: parsed.error_codes?.[0] ?? null });
      });
    });
    request.on('error', reject);
    request.end(body);
  });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body, or null for an empty one. */
  body: unknown;
}

/** Sends one HTTPS request to the fake, bypassing the SDKs, so that tests can check the fake against the API references. */
export function rawRequest(
  url: string,
  caFile: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body);
    const request = httpsRequest(new URL(url), { method: options.method ?? 'GET', ca: readFileSync(caFile, 'utf8'), headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text === '' ? null : JSON.parse(text) });
      });
    });
    request.on('error', reject);
    request.end(options.body);
  });
}
