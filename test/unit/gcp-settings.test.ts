import { describe, expect, it } from 'vitest';
import { gapicEndpointOptions, googleApiErrorOf, gcpErrorCode, parseServiceAccountKeyFile, readGcpSettings } from '../../providers/gcp-shared/index.js';
import { classifyServiceAccountKeys } from '../../providers/gcp-service-account-key/index.js';
import { RekeyError } from '../../src/errors.js';

const KEY_FILE_ENV = { REKEY_GCP_CREDENTIALS_FILE: '/run/secrets/rekey-gcp.json' };

function thrown(action: () => unknown): RekeyError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(RekeyError);
    return error as RekeyError;
  }
  throw new Error('expected an error');
}

describe('readGcpSettings', () => {
  it('defaults every endpoint to Google', () => {
    const settings = readGcpSettings(KEY_FILE_ENV);

    expect(settings.iamEndpoint.href).toBe('https://iam.googleapis.com/');
    expect(settings.iamCredentialsEndpoint.href).toBe('https://iamcredentials.googleapis.com/');
    expect(settings.secretManagerEndpoint.href).toBe('https://secretmanager.googleapis.com/');
    expect(settings.tokenUrl).toBeUndefined();
    expect(settings.tokenInfoUrl).toBe('https://oauth2.googleapis.com/tokeninfo');
    expect(settings.credentials).toEqual({ kind: 'key-file', path: '/run/secrets/rekey-gcp.json' });
    expect(settings.impersonate).toBeUndefined();
  });

  it('derives tokeninfo from the token URL', () => {
    const settings = readGcpSettings({ ...KEY_FILE_ENV, REKEY_GCP_TOKEN_URL: 'http://127.0.0.1:8089/token' });

    expect(settings.tokenInfoUrl).toBe('http://127.0.0.1:8089/tokeninfo');
  });

  it('requires an admin identity', () => {
    const error = thrown(() => readGcpSettings({}));

    expect(error.code).toBe('INVALID_PARAMETERS');
    expect(error.message).toBe(
      "neither REKEY_GCP_CREDENTIALS_FILE nor REKEY_GCP_USE_ADC=true is set: set the path of rekey's service-account key file, or opt in to Application Default Credentials",
    );
  });

  it('uses ADC only when asked', () => {
    expect(readGcpSettings({ REKEY_GCP_USE_ADC: 'true' }).credentials).toEqual({ kind: 'adc' });
    expect(thrown(() => readGcpSettings({ REKEY_GCP_USE_ADC: 'false' })).code).toBe('INVALID_PARAMETERS');
    expect(thrown(() => readGcpSettings({ REKEY_GCP_USE_ADC: 'yes' })).message).toBe('REKEY_GCP_USE_ADC="yes" is invalid: expected true or false');
  });

  it('rejects two admin identities', () => {
    const error = thrown(() => readGcpSettings({ ...KEY_FILE_ENV, REKEY_GCP_USE_ADC: 'true' }));

    expect(error.message).toBe('REKEY_GCP_CREDENTIALS_FILE and REKEY_GCP_USE_ADC=true are both set: choose one admin identity for rekey');
  });

  it('rejects an endpoint with a path', () => {
    const error = thrown(() => readGcpSettings({ ...KEY_FILE_ENV, REKEY_GCP_IAM_ENDPOINT: 'https://iam.googleapis.com/v1' }));

    expect(error.message).toBe('REKEY_GCP_IAM_ENDPOINT="https://iam.googleapis.com/v1" is invalid: expected a URL without a path, such as https://iam.googleapis.com');
  });

  it('rejects plain http off loopback', () => {
    const endpoint = thrown(() => readGcpSettings({ ...KEY_FILE_ENV, REKEY_GCP_IAM_ENDPOINT: 'http://iam.example.com' }));
    const token = thrown(() => readGcpSettings({ ...KEY_FILE_ENV, REKEY_GCP_TOKEN_URL: 'ftp://x/token' }));

    expect(endpoint.message).toBe('REKEY_GCP_IAM_ENDPOINT="http://iam.example.com" is invalid: expected an https:// URL such as https://iam.googleapis.com (http:// only on a loopback address)');
    expect(token.message).toBe('REKEY_GCP_TOKEN_URL="ftp://x/token" is invalid: expected an https:// URL such as https://oauth2.googleapis.com/token (http:// only on a loopback address)');
    expect(readGcpSettings({ ...KEY_FILE_ENV, REKEY_GCP_IAM_ENDPOINT: 'http://[::1]:8089' }).iamEndpoint.port).toBe('8089');
  });

  it('rejects a rotator that is not an email', () => {
    const error = thrown(() => readGcpSettings({ ...KEY_FILE_ENV, REKEY_GCP_IMPERSONATE_SERVICE_ACCOUNT: 'rotator' }));

    expect(error.message).toBe('REKEY_GCP_IMPERSONATE_SERVICE_ACCOUNT="rotator" is invalid: expected a service account email such as rotator@project.iam.gserviceaccount.com');
  });

  it('reports an unreadable CA file', () => {
    const error = thrown(() => readGcpSettings({ ...KEY_FILE_ENV, REKEY_GCP_CA_FILE: '/nonexistent/ca.pem' }));

    expect(error.message).toMatch(/^REKEY_GCP_CA_FILE="\/nonexistent\/ca\.pem" cannot be read \(Error: ENOENT/);
  });
});

describe('gapicEndpointOptions', () => {
  it('splits host, port and protocol', () => {
    expect(gapicEndpointOptions(new URL('http://127.0.0.1:8089'))).toEqual({ apiEndpoint: '127.0.0.1', port: 8089, protocol: 'http', fallback: true });
    expect(gapicEndpointOptions(new URL('https://secretmanager.googleapis.com'))).toEqual({ apiEndpoint: 'secretmanager.googleapis.com', port: 443, protocol: 'https', fallback: true });
  });
});

describe('parseServiceAccountKeyFile', () => {
  it('never quotes the file in its errors', () => {
    const text = '{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\\nsecret-material\\n","client_email":"a@b.iam.gserviceaccount.com"}';

    const error = thrown(() => parseServiceAccountKeyFile(text, 'the test file'));

    expect(error.message).toBe('the test file has no private_key_id: expected a complete service-account key file');
    expect(thrown(() => parseServiceAccountKeyFile('{"private_key": "secret-material"', 'the test file')).message).toBe('the test file is not valid JSON: expected a service-account key file');
  });
});

describe('Google error parsing', () => {
  it('reads a REST error body', () => {
    const error = Object.assign(new Error('Request failed'), {
      response: { status: 400, data: { error: { code: 400, message: 'Precondition check failed.', status: 'FAILED_PRECONDITION' } } },
    });

    expect(googleApiErrorOf(error)).toEqual({ httpStatus: 400, status: 'FAILED_PRECONDITION', message: 'Precondition check failed.', detailsText: '' });
    expect(gcpErrorCode(error)).toBe('PRECONDITION_FAILED');
  });

  it('maps gRPC codes of google-gax errors', () => {
    expect(gcpErrorCode(Object.assign(new Error('quota'), { code: 8 }))).toBe('THROTTLED');
    expect(gcpErrorCode(Object.assign(new Error('gone'), { code: 5 }))).toBe('TARGET_NOT_FOUND');
    expect(gcpErrorCode(Object.assign(new Error('denied'), { code: 7 }))).toBe('PERMISSION_DENIED');
    expect(gcpErrorCode(Object.assign(new Error('down'), { code: 14 }))).toBe('UNAVAILABLE');
  });

  it('maps socket errors', () => {
    expect(gcpErrorCode(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe('UNAVAILABLE');
    expect(gcpErrorCode(Object.assign(new Error('untrusted'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }))).toBe('PRECONDITION_FAILED');
  });
});

describe('classifyServiceAccountKeys', () => {
  const keys = (count: number): Array<{ keyId: string; disabled: boolean; createdAt: number }> =>
    Array.from({ length: count }, (_, index) => ({ keyId: `key-${index}`, disabled: false, createdAt: index * 1000 }));

  it('picks the newest enabled key when nothing is recorded', () => {
    const listed = [...keys(3), { keyId: 'key-disabled', disabled: true, createdAt: 99_000 }];

    expect(classifyServiceAccountKeys('a@b', listed, { currentKeyId: null, unpromotedKeyIds: [] })).toEqual({
      currentKeyId: 'key-2', orphanKeyIds: [], otherKeyIds: ['key-0', 'key-1', 'key-disabled'],
    });
  });

  it('never reports an unpromoted key as current', () => {
    expect(classifyServiceAccountKeys('a@b', keys(2), { currentKeyId: null, unpromotedKeyIds: ['key-1'] })).toEqual({
      currentKeyId: 'key-0', orphanKeyIds: ['key-1'], otherKeyIds: [],
    });
  });

  it('reports KEY_QUOTA at ten kept keys', () => {
    const error = thrown(() => classifyServiceAccountKeys('a@b', keys(10), { currentKeyId: 'key-0', unpromotedKeyIds: [] }));

    expect(error.code).toBe('KEY_QUOTA');
    expect(error.message).toBe(
      'service account a@b already has the maximum of 10 user-managed keys: key-0 (current), key-1, key-2, key-3, key-4, key-5, key-6, key-7, key-8, key-9. ' +
        'rekey deletes only replacements that it minted and never promoted, so delete unused keys by hand, then retry',
    );
  });
});
