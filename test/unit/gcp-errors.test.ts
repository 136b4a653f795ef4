import { describe, expect, it } from 'vitest';
import { toRekeyError } from '../../providers/gcp-shared/errors.js';
import { SecretValue } from '../../src/secret.js';

describe('toRekeyError for GCP calls', () => {
  it('keeps the request body out of the error', () => {
    const token = SecretValue.fromString('ya29.CANARY-TOKEN');
    // The shape of a client library error for a refused connection: the request config travels along.
    const connectionError = Object.assign(new Error('request to http://127.0.0.1:9/tokeninfo failed, reason: connect ECONNREFUSED 127.0.0.1:9'), {
      code: 'ECONNREFUSED',
      config: { url: 'http://127.0.0.1:9/tokeninfo', method: 'POST', data: 'access_token=ya29.CANARY-TOKEN' },
    });

    const error = toRekeyError(connectionError, 'the tokeninfo request', 'tokeninfo endpoint http://127.0.0.1:9/tokeninfo', [token]);

    expect(error.cause).toBeUndefined();
    expect(error.message).not.toContain('CANARY');
    expect(JSON.stringify(error)).not.toContain('CANARY');
    expect(error.message).toContain('the tokeninfo request on tokeninfo endpoint http://127.0.0.1:9/tokeninfo failed');
  });
});
