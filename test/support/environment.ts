import { randomBytes } from 'node:crypto';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { AwsKeyPair } from './moto.js';
import { createTestUser, deleteTestUser, uniqueName } from './aws.js';
import { createRole, dropRole, ensurePasswordLogin, uniqueRoleName } from './postgres.js';
import { createAclUser, deleteAclUser, REDIS_ADMIN_URL, uniqueUserName } from './redis.js';

/** One real credential of each kind, with the values the test created them with. */
export interface MixedEnvironment {
  aws: { userName: string; key: AwsKeyPair; secretId: string };
  postgres: { role: string; password: string };
  redis: { user: string; password: string };
  /** An inventory with one environment `ci` holding the three credentials. */
  inventory: string;
  cleanup(): Promise<void>;
}

/**
 * Creates an IAM user with one key in moto, a PostgreSQL role that must log in with its
 * password, and a Redis ACL user, and an inventory that lists them.
 */
export async function createMixedEnvironment(iam: IAMClient, options: { gracePeriod?: string } = {}): Promise<MixedEnvironment> {
  await ensurePasswordLogin();
  const { userName, keys } = await createTestUser(iam, 1);
  const secretId = uniqueName('rekey-test/deployer');
  const role = uniqueRoleName();
  const postgresPassword = randomBytes(18).toString('base64url');
  await createRole(role, postgresPassword, { checked: true });
  const user = uniqueUserName();
  const redisPassword = randomBytes(18).toString('base64url');
  await createAclUser(REDIS_ADMIN_URL, user, [redisPassword]);

  const grace = options.gracePeriod === undefined ? '' : `\n        gracePeriod: ${options.gracePeriod}`;
  const inventory = `
environments:
  ci:
    description: A CI runner that ran a compromised package
    credentials:
      - id: deployer-aws
        kind: aws-iam-access-key
        params: { userName: ${userName} }${grace}
        stores:
          - store: file
            path: ci/deployer-aws
          - store: aws-secrets-manager
            secretId: ${secretId}
      - id: app-db
        kind: postgres-role-password
        params: { role: ${role}, host: 127.0.0.1, port: 5432, database: postgres }${grace}
        stores:
          - store: file
            path: ci/app-db
      - id: app-cache
        kind: redis-acl-password
        params: { user: ${user} }${grace}
        stores:
          - store: file
            path: ci/app-cache
`;
  return {
    aws: { userName, key: keys[0]!, secretId },
    postgres: { role, password: postgresPassword },
    redis: { user, password: redisPassword },
    inventory,
    async cleanup(): Promise<void> {
      await deleteTestUser(iam, userName).catch(() => undefined);
      await dropRole(role).catch(() => undefined);
      await deleteAclUser(REDIS_ADMIN_URL, user).catch(() => undefined);
    },
  };
}
