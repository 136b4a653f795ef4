import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeVault, type FakeVaultOptions } from '../fakes/vault.js';

export interface RawVaultResponse {
  status: number;
  /** The parsed JSON body, or null for an empty one. */
  body: unknown;
}

/**
 * Sends one request to the fake Vault with fetch, bypassing rekey's client, so that tests can
 * check the fake against the API reference. LIST becomes `GET ...?list=true`.
 */
export async function vaultRequest(
  vault: FakeVault,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST',
  path: string,
  options: { token?: string; body?: unknown; namespace?: string } = {},
): Promise<RawVaultResponse> {
  const url = new URL(`/v1/${path}`, vault.url);
  if (method === 'LIST') url.searchParams.set('list', 'true');
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers['X-Vault-Token'] = options.token;
  if (options.namespace !== undefined) headers['X-Vault-Namespace'] = options.namespace;
  if (options.body !== undefined) headers['content-type'] = 'application/json';

  const response = await fetch(url, {
    method: method === 'LIST' ? 'GET' : method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text) };
}

/** Returns `body.data` of a response, failing the test when the body has no object there. */
export function dataOf(response: RawVaultResponse): Record<string, unknown> {
  const body = response.body as { data?: unknown } | null;
  if (typeof body?.data !== 'object' || body.data === null) {
    throw new Error(`response ${response.status} has no data object: ${JSON.stringify(response.body)}`);
  }
  return body.data as Record<string, unknown>;
}

/** Builds the environment of a Vault client that calls `vault` with `token`. */
export function tokenEnv(vault: FakeVault, token: string, extra: Record<string, string> = {}): Record<string, string> {
  return { REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_TOKEN: token, ...extra };
}

/** Starts fake Vault servers and closes them all at once, for afterEach hooks. */
export class FakeVaults {
  readonly #started: FakeVault[] = [];

  async start(options: FakeVaultOptions = {}): Promise<FakeVault> {
    const vault = await FakeVault.start(options);
    this.#started.push(vault);
    return vault;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#started.splice(0).map((vault) => vault.close()));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface TestCertificate {
  key: string;
  cert: string;
  /** Path of the certificate file, for REKEY_VAULT_CACERT. */
  certFile: string;
  /** Removes the temporary folder of the files. */
  remove(): void;
}

/** Creates a self-signed certificate for 127.0.0.1 with the openssl command, valid for one day. */
export function selfSignedCertificate(): TestCertificate {
  const folder = mkdtempSync(join(tmpdir(), 'rekey-vault-tls-'));
  const keyFile = join(folder, 'key.pem');
  const certFile = join(folder, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return {
    key: readFileSync(keyFile, 'utf8'),
    cert: readFileSync(certFile, 'utf8'),
    certFile,
    remove: () => rmSync(folder, { recursive: true, force: true }),
  };
}
