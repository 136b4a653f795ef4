import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/**
 * The machine's Redis, started by scripts/test-services.sh on loopback and shared with other
 * suites. Tests here only create and delete their own ACL users on it; they never change the
 * default user or a global setting.
 */
export const REDIS_ADMIN_URL = process.env.REKEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const START_TIMEOUT_MS = 10_000;

export async function withRedis<T>(url: string, work: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, { lazyConnect: true, protocol: 2, maxRetriesPerRequest: 1 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    client.disconnect();
  }
}

/** Returns an ACL user name that no other test uses. */
export function uniqueUserName(): string {
  return `rekey_t_${randomBytes(6).toString('hex')}`;
}

/**
 * Creates an enabled ACL user with the given passwords (none makes it `nopass`). It may run PING
 * and CLIENT ID, enough for a test client to prove its connection still works.
 */
export async function createAclUser(url: string, user: string, passwords: string[], flags: string[] = ['on']): Promise<void> {
  const secrets = passwords.length === 0 ? ['nopass'] : passwords.map((password) => `>${password}`);
  await withRedis(url, async (admin) => {
    await admin.call('ACL', 'SETUSER', user, 'reset', ...flags, ...secrets, '+ping', '+client|id');
  });
}

export async function deleteAclUser(url: string, user: string): Promise<void> {
  await withRedis(url, async (admin) => {
    await admin.call('ACL', 'DELUSER', user);
  });
}

/** Returns the SHA-256 hashes that ACL GETUSER lists for the user; null if the user does not exist. */
export async function aclPasswordHashes(url: string, user: string): Promise<string[] | null> {
  return withRedis(url, async (admin) => {
    const reply = await admin.call('ACL', 'GETUSER', user) as unknown[] | null;
    if (reply === null) return null;
    const index = reply.indexOf('passwords');
    return (reply[index + 1] as string[]).slice().sort();
  });
}

/** Authenticates as `user` on a fresh connection. Returns 'OK', or the first word of the error (WRONGPASS). */
export async function tryAuth(url: string, user: string, password: string): Promise<string> {
  const client = new Redis(url, {
    lazyConnect: true, protocol: 2, enableReadyCheck: false, disableClientInfo: true, retryStrategy: () => null, maxRetriesPerRequest: 0,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return String(await client.call('AUTH', user, password));
  } catch (error) {
    return (error instanceof Error ? error.message : String(error)).split(' ')[0] ?? '';
  } finally {
    client.disconnect();
  }
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('could not find a free loopback port');
  return address.port;
}

/**
 * A redis-server of the test's own, on a free loopback port, that keeps its users in an aclfile
 * in a temporary directory. The shared Redis has no aclfile and its settings must not change.
 */
export class AclFileRedis {
  readonly port: number;
  readonly directory: string;
  readonly aclFile: string;
  #process: ChildProcess | null = null;

  private constructor(port: number, directory: string) {
    this.port = port;
    this.directory = directory;
    this.aclFile = join(directory, 'users.acl');
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<AclFileRedis> {
    const directory = mkdtempSync(join(tmpdir(), 'rekey-redis-'));
    const server = new AclFileRedis(await freeLoopbackPort(), directory);
    writeFileSync(server.aclFile, 'user default on nopass ~* &* +@all\n');
    await server.#launch();
    return server;
  }

  /** Stops the server and starts it again on the same port and aclfile. */
  async restart(): Promise<void> {
    await this.#terminate();
    await this.#launch();
  }

  async stop(): Promise<void> {
    await this.#terminate();
    rmSync(this.directory, { recursive: true, force: true });
  }

  async #launch(): Promise<void> {
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.directory, '--aclfile', this.aclFile, '--daemonize', 'no',
    ], { stdio: 'ignore' });
    this.#process = child;

    const deadline = Date.now() + START_TIMEOUT_MS;
    while ((await tryPing(this.url)) !== 'PONG') {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with code ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within ${START_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async #terminate(): Promise<void> {
    const child = this.#process;
    this.#process = null;
    if (child === null || child.exitCode !== null) return;

    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

async function tryPing(url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true, protocol: 2, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return String(await client.ping());
  } catch {
    return 'unreachable';
  } finally {
    client.disconnect();
  }
}
