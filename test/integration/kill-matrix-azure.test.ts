import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import type { BoundaryPoint } from '../../src/engine/rotation.js';
import { FakeAzure } from '../fakes/azure.js';
import { createTestAuthority, requestToken, type TestAuthority } from '../support/azure.js';
import { startHarness, type Harness } from '../support/harness.js';
import { rotateThroughKilledWorker } from '../support/worker-child.js';

/*
 * The kill matrix for Entra ID client secrets: a real worker process is killed with SIGKILL at
 * each step boundary of the rotation, and a second worker takes the job over. The fake's token
 * endpoint and its list of the application's secrets then show that exactly one new secret exists
 * and works, and that the old secret and any secret lost before staging are gone.
 */

const SECRET_NAME = 'ci-deployer';
const BOUNDARIES: BoundaryPoint[] = ['inspected', 'minted', 'staged', 'verified', 'promoted'];
const STEP_AT_BOUNDARY: Partial<Record<BoundaryPoint, string>> = { inspected: 'inspect', minted: 'mint', staged: 'stage', verified: 'verify', promoted: 'promote' };

interface StoredSecret {
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

describe('kill matrix for Entra ID client secrets', () => {
  let authority: TestAuthority;

  beforeAll(() => {
    authority = createTestAuthority();
  });

  afterAll(() => {
    authority?.remove();
  });

  async function runKillCase(boundary: BoundaryPoint): Promise<void> {
    let fake: FakeAzure | undefined;
    let harness: Harness | undefined;
    try {
      fake = await FakeAzure.start({ tls: { key: authority.serverKey, cert: authority.serverCert } });
      const app = fake.createApplication({ displayName: 'ci-deployer' });
      const oldSecret = fake.addSecret(app.appId, 'first secret');
      fake.writeSecret(SECRET_NAME, JSON.stringify({ tenantId: fake.tenantId, clientId: app.appId, clientSecret: oldSecret.secretText }));

      harness = await startHarness({
        inventory: `
environments:
  ci:
    credentials:
      - id: deployer-azure
        kind: azure-app-client-secret
        params: { appId: ${app.appId} }
        stores:
          - store: azure-key-vault
            vaultUrl: ${fake.url}
            name: ${SECRET_NAME}
          - store: file
            path: ci/deployer-azure
`,
        worker: false,
        env: {
          REKEY_AZURE_AUTHORITY_HOST: fake.url,
          REKEY_AZURE_GRAPH_ENDPOINT: fake.url,
          REKEY_AZURE_GRAPH_SCOPE: 'https://graph.microsoft.com/.default',
          REKEY_AZURE_TENANT_ID: fake.tenantId,
          REKEY_AZURE_CLIENT_ID: fake.admin.clientId,
          REKEY_AZURE_CLIENT_SECRET: fake.admin.secret,
          REKEY_AZURE_CA_FILE: authority.caFile,
          REKEY_AZURE_KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
          REKEY_AZURE_VERIFY_WINDOW_MS: '20000',
          REKEY_AZURE_VERIFY_INTERVAL_MS: '250',
          REKEY_WORKER_LOCK_MS: '2000',
          REKEY_WORKER_STALLED_INTERVAL_MS: '1000',
        },
      });
      const result = await rotateThroughKilledWorker(harness, boundary, `azure kill matrix: SIGKILL at ${boundary}`);

      expect(result.runStatus).toBe('completed');
      expect(result.credential.outcome).toBe('rotated');
      const newKeyId = result.credential.newKeyId;
      // Exactly one secret is left on the application: the replacement.
      expect(fake.passwordCredentials(app.appId).map((password) => password.keyId)).toEqual([newKeyId]);
      const stored = JSON.parse(fake.readSecret(SECRET_NAME) ?? '{}') as StoredSecret;
      const inFile = await createFileStore(harness.env).readCurrentValue('ci/deployer-azure');
      expect(JSON.parse(inFile!.reveal())).toEqual(stored);
      inFile!.wipe();
      expect(await requestToken(fake.url, fake.tenantId, authority.caFile, app.appId, stored.clientSecret)).toEqual({ status: 200, aadsts: null });
      expect(await requestToken(fake.url, fake.tenantId, authority.caFile, app.appId, oldSecret.secretText)).toEqual({ status: 401, aadsts: 7000215 });

      expect(result.auditIntact).toBe(true);
      expect(result.auditRecords.find((record) => record.outcome === 'resumed')?.step).toBe(STEP_AT_BOUNDARY[boundary]);
      const minted = result.auditRecords.filter((record) => record.step === 'mint' && record.outcome === 'succeeded');
      expect(minted).toHaveLength(boundary === 'minted' ? 2 : 1);
    } finally {
      await harness?.close();
      await fake?.close();
    }
  }

  for (const boundary of BOUNDARIES) {
    it(`recovers from a kill at ${boundary}`, () => runKillCase(boundary), 90_000);
  }
});
