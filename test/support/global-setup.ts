import { bootstrapMotoAdmin } from './moto.js';

/**
 * Runs once before the suites. The services themselves are started by scripts/test-services.sh
 * (part of `npm test`); this creates the identities the suites share.
 */
export default async function setup(): Promise<void> {
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  await bootstrapMotoAdmin();
}
