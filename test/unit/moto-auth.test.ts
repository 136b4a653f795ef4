import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import { MOTO_REGION, MOTO_URL, motoAdmin } from '../support/moto.js';

describe('moto test server', () => {
  it('rejects a key it does not know', async () => {
    const sts = new STSClient({ endpoint: MOTO_URL, region: MOTO_REGION, credentials: { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' } });
    await expect(sts.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({ name: 'InvalidClientTokenId' });
  });

  it('accepts the admin key', async () => {
    const admin = motoAdmin();
    const sts = new STSClient({ endpoint: MOTO_URL, region: MOTO_REGION, credentials: admin });
    const identity = await sts.send(new GetCallerIdentityCommand({}));
    expect(identity.Arn).toMatch(/:user\/rekey-admin-\d+$/);
  });
});
