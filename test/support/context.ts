import { createHmac } from 'node:crypto';

/** The fingerprint key of step contexts built by tests. */
export const TEST_FINGERPRINT_KEY = Buffer.alloc(32, 7);

/** Computes the keyed digest that rekey's step context computes, with the test key. */
export function testKeyDigest(text: string): string {
  return createHmac('sha256', TEST_FINGERPRINT_KEY).update(text, 'utf8').digest('hex');
}
