import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StepContext } from '../../src/contracts.js';
import { silentLogger } from '../../src/logger.js';
import { FakeGcp, type FakeGcpOptions } from '../fakes/gcp.js';
import { testKeyDigest } from './context.js';

/** The email of rekey's own admin service account in the fake. */
export const ADMIN_ACCOUNT = 'rekey-admin@rekey-tests.iam.gserviceaccount.com';

/** A fake GCP with rekey's admin account, its key file on disk and the environment that points rekey at both. */
export interface GcpTestbed {
  fake: FakeGcp;
  /** REKEY_GCP_* variables: every endpoint is the fake, so no call can reach Google. */
  env: Record<string, string>;
  /** The admin key file's JSON text. */
  adminKeyFile: string;
  close(): Promise<void>;
}

/** Starts a fake GCP and writes rekey's admin key file into a temporary folder. */
export async function startGcpTestbed(options: FakeGcpOptions = {}): Promise<GcpTestbed> {
  const fake = await FakeGcp.start(options);
  fake.createServiceAccount(ADMIN_ACCOUNT);
  const adminKeyFile = fake.addKey(ADMIN_ACCOUNT);
  const folder = mkdtempSync(join(tmpdir(), 'rekey-gcp-'));
  const keyPath = join(folder, 'admin-key.json');
  writeFileSync(keyPath, adminKeyFile, { mode: 0o600 });
  const extra: Record<string, string> = { REKEY_GCP_CREDENTIALS_FILE: keyPath };
  if (options.tls !== undefined) {
    extra.REKEY_GCP_CA_FILE = join(folder, 'ca.pem');
    writeFileSync(extra.REKEY_GCP_CA_FILE, options.tls.cert);
  }
  return {
    fake,
    adminKeyFile,
    env: gcpEnv(fake, extra),
    async close() {
      await fake.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** The project and secret of the Secret Manager store in `keyInventory`. */
export const TEST_PROJECT = 'rekey-tests';
export const TEST_SECRET = 'deployer-gcp';

/** Builds an inventory that rotates the account's key into Secret Manager and the encrypted file store. */
export function keyInventory(serviceAccount: string): string {
  return `
environments:
  ci:
    credentials:
      - id: deployer-gcp
        kind: gcp-service-account-key
        params: { serviceAccount: ${serviceAccount} }
        stores:
          - store: gcp-secret-manager
            project: ${TEST_PROJECT}
            secret: ${TEST_SECRET}
          - store: file
            path: ci/deployer-gcp
`;
}

/** Builds the REKEY_GCP_* variables that point every endpoint at `fake`. */
export function gcpEnv(fake: FakeGcp, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REKEY_GCP_TOKEN_URL: fake.tokenUrl,
    REKEY_GCP_IAM_ENDPOINT: fake.url,
    REKEY_GCP_IAM_CREDENTIALS_ENDPOINT: fake.url,
    REKEY_GCP_SECRET_MANAGER_ENDPOINT: fake.url,
    ...extra,
  };
}

/** Returns a service account email that no other test uses. */
export function uniqueServiceAccount(prefix = 'app'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}@rekey-tests.iam.gserviceaccount.com`;
}

/** Builds the context a step receives, with a fresh rotation id (a UUID) and a silent logger. */
export function gcpStepContext(overrides: Partial<StepContext> = {}): StepContext {
  return {
    runId: randomUUID(),
    rotationId: randomUUID(),
    environment: 'test',
    credentialId: 'gcp-credential',
    mode: 'incident',
    logger: silentLogger(),
    signal: new AbortController().signal,
    keyDigest: testKeyDigest,
    ...overrides,
  };
}

/** Posts a JWT-bearer assertion signed with `keyFile` to the fake's token endpoint and returns the HTTP status. */
export async function tokenStatus(fake: FakeGcp, keyFileText: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const { signAssertion, parseServiceAccountKeyFile } = await import('../../providers/gcp-shared/index.js');
  const keyFile = parseServiceAccountKeyFile(keyFileText, 'test key file');
  const assertion = await signAssertion(keyFile, fake.tokenUrl, 'https://www.googleapis.com/auth/cloud-platform');
  const response = await fetch(fake.tokenUrl, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
