import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';

/** moto, started by scripts/test-services.sh on loopback with request authentication on. */
export const MOTO_URL = process.env.REKEY_TEST_MOTO_URL ?? `http://127.0.0.1:${process.env.REKEY_TEST_MOTO_PORT ?? '5055'}`;
export const MOTO_REGION = 'us-east-1';

const ADMIN_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.rekey', 'moto-admin.json');

export interface AwsKeyPair {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * Creates moto's admin identity, the one rekey uses in tests: an IAM user with an inline policy
 * that allows everything. moto rejects unsigned requests, so this opens a window of exactly three
 * unauthenticated requests (CreateUser, PutUserPolicy, CreateAccessKey). The window then closes
 * by itself, and every later request must be signed by a key that exists.
 */
export async function bootstrapMotoAdmin(): Promise<AwsKeyPair> {
  // Another client of the same moto can use up the window; try again a few times.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await createMotoAdmin();
    } catch (error) {
      if (attempt >= BOOTSTRAP_ATTEMPTS) {
        throw new Error(`could not create the moto admin at ${MOTO_URL} after ${attempt} attempts: ${(error as Error).name}: ${(error as Error).message}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

const BOOTSTRAP_ATTEMPTS = 5;

async function createMotoAdmin(): Promise<AwsKeyPair> {
  const opened = await fetch(`${MOTO_URL}/moto-api/reset-auth`, { method: 'POST', body: '3' });
  if (!opened.ok) throw new Error(`moto at ${MOTO_URL} rejected reset-auth with HTTP ${opened.status}`);

  // moto ignores the signature during the window, but the SDK needs some credentials to sign.
  const iam = new IAMClient({
    endpoint: MOTO_URL,
    region: MOTO_REGION,
    credentials: { accessKeyId: 'AKIABOOTSTRAP0000000', secretAccessKey: 'bootstrap' },
    // An SDK retry would spend one of the three unauthenticated requests.
    maxAttempts: 1,
  });
  const userName = `rekey-admin-${Date.now()}`;
  await iam.send(new CreateUserCommand({ UserName: userName }));
  await iam.send(new PutUserPolicyCommand({
    UserName: userName,
    PolicyName: 'allow-all',
    PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }),
  }));
  const created = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
  iam.destroy();

  const key = created.AccessKey;
  if (key?.AccessKeyId === undefined || key.SecretAccessKey === undefined) {
    throw new Error('moto returned no access key for the admin user');
  }
  const pair = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
  mkdirSync(dirname(ADMIN_FILE), { recursive: true });
  writeFileSync(ADMIN_FILE, JSON.stringify(pair), { mode: 0o600 });
  return pair;
}

/** Returns the admin key pair that the global setup created for this test run. */
export function motoAdmin(): AwsKeyPair {
  return JSON.parse(readFileSync(ADMIN_FILE, 'utf8')) as AwsKeyPair;
}

/** Builds the environment variables through which rekey receives its AWS admin identity in tests. */
export function motoEnv(): Record<string, string> {
  const admin = motoAdmin();
  return {
    REKEY_AWS_ENDPOINT: MOTO_URL,
    REKEY_AWS_REGION: MOTO_REGION,
    REKEY_AWS_ACCESS_KEY_ID: admin.accessKeyId,
    REKEY_AWS_SECRET_ACCESS_KEY: admin.secretAccessKey,
  };
}
