import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyPasswords, secretLimitOf, type ApplicationView } from '../../providers/azure-app-client-secret/index.js';
import { readAzureSettings, retryAfterMs } from '../../providers/azure-shared/index.js';
import { RekeyError } from '../../src/errors.js';

const TENANT = '11111111-2222-3333-4444-555555555555';
const CLIENT = '66666666-7777-8888-9999-000000000000';
const SECRET_ENV = { REKEY_AZURE_TENANT_ID: TENANT, REKEY_AZURE_CLIENT_ID: CLIENT, REKEY_AZURE_CLIENT_SECRET: 'admin-secret' };

function settingsError(env: Record<string, string>): RekeyError {
  try {
    readAzureSettings(env);
  } catch (error) {
    if (error instanceof RekeyError) return error;
    throw error;
  }
  throw new Error('expected readAzureSettings to throw');
}

describe('readAzureSettings', () => {
  let folder: string;

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'rekey-azure-settings-'));
  });

  afterEach(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  it('defaults to the global cloud with discovery on', () => {
    const settings = readAzureSettings(SECRET_ENV);

    expect(settings.authorityHost).toBe('https://login.microsoftonline.com');
    expect(settings.disableInstanceDiscovery).toBe(false);
    expect(settings.graphEndpoint).toBe('https://graph.microsoft.com');
    expect(settings.graphScope).toBe('https://graph.microsoft.com/.default');
    expect(settings.ca).toBeUndefined();
    expect(settings.disableChallengeResourceVerification).toBe(false);
    expect(settings.credential).toEqual({ kind: 'client-secret', tenantId: TENANT, clientId: CLIENT, secret: expect.anything() as unknown });
  });

  it('turns instance discovery off for another authority host', () => {
    const settings = readAzureSettings({ ...SECRET_ENV, REKEY_AZURE_AUTHORITY_HOST: 'https://login.example.internal:8443/' });

    expect(settings.authorityHost).toBe('https://login.example.internal:8443');
    expect(settings.disableInstanceDiscovery).toBe(true);
  });

  it('keeps discovery on for the US Government cloud', () => {
    expect(readAzureSettings({ ...SECRET_ENV, REKEY_AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us' }).disableInstanceDiscovery).toBe(false);
  });

  it('rejects an http authority host', () => {
    const error = settingsError({ ...SECRET_ENV, REKEY_AZURE_AUTHORITY_HOST: 'http://127.0.0.1:8080' });

    expect(error.code).toBe('INVALID_PARAMETERS');
    expect(error.message).toBe('REKEY_AZURE_AUTHORITY_HOST="http://127.0.0.1:8080" must use https: Entra ID tokens and client secrets are never sent over plain http');
  });

  it('adds the CA file to the bundled CAs', () => {
    const caFile = join(folder, 'ca.pem');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');

    const settings = readAzureSettings({ ...SECRET_ENV, REKEY_AZURE_CA_FILE: caFile });

    expect(settings.ca).toHaveLength(rootCertificates.length + 1);
    expect(settings.ca?.at(-1)).toContain('MIIB');
  });

  it('reports a missing CA file', () => {
    const error = settingsError({ ...SECRET_ENV, REKEY_AZURE_CA_FILE: join(folder, 'missing.pem') });

    expect(error.message).toBe(`REKEY_AZURE_CA_FILE="${join(folder, 'missing.pem')}" cannot be read (ENOENT): point it at a PEM file of CA certificates`);
  });

  it('reads the client secret from a mounted file', () => {
    const secretFile = join(folder, 'secret');
    writeFileSync(secretFile, 'from-a-file\n');

    const settings = readAzureSettings({ REKEY_AZURE_TENANT_ID: TENANT, REKEY_AZURE_CLIENT_ID: CLIENT, REKEY_AZURE_CLIENT_SECRET_FILE: secretFile });

    expect(settings.credential.kind).toBe('client-secret');
    expect(settings.credential.kind === 'client-secret' ? settings.credential.secret.reveal() : null).toBe('from-a-file');
  });

  it('rejects both a secret and a secret file', () => {
    const error = settingsError({ ...SECRET_ENV, REKEY_AZURE_CLIENT_SECRET_FILE: join(folder, 'secret') });

    expect(error.message).toBe('REKEY_AZURE_CLIENT_SECRET and REKEY_AZURE_CLIENT_SECRET_FILE are both set: set only one');
  });

  it('uses workload identity from the webhook variables', () => {
    const settings = readAzureSettings({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: CLIENT, AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token' });

    expect(settings.credential).toEqual({
      kind: 'workload-identity', tenantId: TENANT, clientId: CLIENT, tokenFilePath: '/var/run/secrets/azure/tokens/azure-identity-token',
    });
  });

  it('names the missing workload identity variables', () => {
    const error = settingsError({ REKEY_AZURE_CREDENTIAL: 'workload-identity', AZURE_TENANT_ID: TENANT });

    expect(error.message).toContain('the workload-identity credential needs AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE');
  });

  it('uses DefaultAzureCredential only when chosen', () => {
    const error = settingsError({});

    expect(error.message).toContain('rekey has no Azure credential');
    expect(readAzureSettings({ REKEY_AZURE_CREDENTIAL: 'default' }).credential).toEqual({ kind: 'default', tenantId: undefined, clientId: undefined });
  });

  it('rejects an unknown credential kind', () => {
    expect(settingsError({ REKEY_AZURE_CREDENTIAL: 'managed-identity' }).message).toBe(
      'REKEY_AZURE_CREDENTIAL="managed-identity" is invalid: expected client-secret, workload-identity or default',
    );
  });
});

describe('retryAfterMs', () => {
  it('reads seconds', () => {
    expect(retryAfterMs('3')).toBe(3000);
  });

  it('reads an HTTP date', () => {
    const now = Date.parse('2026-12-04T12:00:00Z');
    expect(retryAfterMs('Fri, 04 Dec 2026 12:00:07 GMT', now)).toBe(7000);
  });

  it('falls back to five seconds without a usable header', () => {
    expect(retryAfterMs(undefined)).toBe(5000);
    expect(retryAfterMs('soon')).toBe(5000);
  });
});

describe('classifyPasswords', () => {
  function application(keyIds: string[], signInAudience = 'AzureADMyOrg'): ApplicationView {
    return {
      id: 'object-id',
      appId: CLIENT,
      displayName: 'ci-deployer',
      signInAudience,
      passwordCredentials: keyIds.map((keyId, index) => ({
        keyId, displayName: null, startDateTime: new Date(Date.UTC(2026, 0, index + 1)).toISOString(), endDateTime: null,
      })),
    };
  }

  it('keeps the recorded secret current', () => {
    const inspection = classifyPasswords(application(['a', 'b']), { currentKeyId: 'a', unpromotedKeyIds: [] }, null);

    expect(inspection).toEqual({ currentKeyId: 'a', orphanKeyIds: [], otherKeyIds: ['b'] });
  });

  it('picks the newest secret without a record', () => {
    const inspection = classifyPasswords(application(['a', 'b']), { currentKeyId: null, unpromotedKeyIds: [] }, null);

    expect(inspection).toEqual({ currentKeyId: 'b', orphanKeyIds: [], otherKeyIds: ['a'] });
  });

  it('lists only unpromoted secrets as orphans', () => {
    const inspection = classifyPasswords(application(['a', 'b', 'c']), { currentKeyId: 'a', unpromotedKeyIds: ['c', 'gone'] }, null);

    expect(inspection).toEqual({ currentKeyId: 'a', orphanKeyIds: ['c'], otherKeyIds: ['b'] });
  });

  it('discards orphans before applying the limit', () => {
    const inspection = classifyPasswords(application(['a', 'c']), { currentKeyId: 'a', unpromotedKeyIds: ['c'] }, { limit: 2, source: 'maxSecrets in the inventory' });

    expect(inspection.orphanKeyIds).toEqual(['c']);
  });

  it('throws KEY_QUOTA naming the application and the limit', () => {
    let thrown: unknown;
    try {
      classifyPasswords(application(['a', 'b']), { currentKeyId: 'a', unpromotedKeyIds: [] }, { limit: 2, source: 'maxSecrets in the inventory' });
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(RekeyError);
    expect((thrown as RekeyError).code).toBe('KEY_QUOTA');
    expect((thrown as RekeyError).message).toBe(
      `application "ci-deployer" (appId ${CLIENT}) already has 2 client secrets, and maxSecrets in the inventory is 2: a (current), b. ` +
        'rekey deletes only secrets that it minted and never promoted, so remove an unused secret by hand, then retry',
    );
  });
});

describe('secretLimitOf', () => {
  it('prefers the inventory limit', () => {
    expect(secretLimitOf({ signInAudience: 'AzureADandPersonalMicrosoftAccount' }, 5)).toEqual({ limit: 5, source: 'maxSecrets in the inventory' });
  });

  it('limits applications of personal accounts to two', () => {
    expect(secretLimitOf({ signInAudience: 'PersonalMicrosoftAccount' }, undefined)).toEqual({ limit: 2, source: 'the limit for signInAudience PersonalMicrosoftAccount' });
  });

  it('knows no limit for work and school accounts', () => {
    expect(secretLimitOf({ signInAudience: 'AzureADMultipleOrgs' }, undefined)).toBeNull();
  });
});
