import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from '../../src/config.js';

describe('REKEY_TRUST_PROXY', () => {
  it('reads each form', () => {
    expect(readConfig({}).trustProxy).toBe(false);
    expect(readConfig({ REKEY_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(readConfig({ REKEY_TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(readConfig({ REKEY_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
  });

  it('rejects anything else', () => {
    expect(() => readConfig({ REKEY_TRUST_PROXY: 'ingress.local' })).toThrow(
      new ConfigError('REKEY_TRUST_PROXY="ingress.local" is invalid: expected false, true, a number of hops, or proxy addresses and CIDRs separated by commas'),
    );
  });
});
