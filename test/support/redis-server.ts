import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

const START_TIMEOUT_MS = 10_000;

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('could not find a free loopback port');
  return address.port;
}

/** Opens a connection that neither retries nor reconnects, for one command of the test itself. */
function oneShotClient(url: string): Redis {
  const client = new Redis(url, { lazyConnect: true, protocol: 2, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  client.on('error', () => undefined);
  return client;
}

/**
 * A redis-server of the test's own on a free loopback port, with the append-only file on and
 * fsynced after every write (`appendfsync always`), in a temporary directory. A restart keeps the
 * port and the directory, so the data a client wrote before SHUTDOWN is there again afterwards.
 */
export class PersistentRedis {
  readonly port: number;
  readonly directory: string;
  #process: ChildProcess | null = null;

  private constructor(port: number, directory: string) {
    this.port = port;
    this.directory = directory;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get logFile(): string {
    return join(this.directory, 'redis.log');
  }

  static async start(): Promise<PersistentRedis> {
    const server = new PersistentRedis(await freeLoopbackPort(), mkdtempSync(join(tmpdir(), 'rekey-redis-aof-')));
    await server.launch();
    return server;
  }

  /** Starts redis-server and waits for its PONG, which it sends once it has loaded its data. */
  async launch(): Promise<void> {
    if (this.#process !== null) throw new Error(`redis-server on port ${this.port} is already running`);
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.directory, '--logfile', this.logFile,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no',
    ], { stdio: 'ignore' });
    this.#process = child;

    const deadline = Date.now() + START_TIMEOUT_MS;
    while ((await this.ping()) !== 'PONG') {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with code ${child.exitCode}: ${this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within ${START_TIMEOUT_MS} ms: ${this.logTail()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Sends SHUTDOWN, which fsyncs the append-only file and closes every client connection, and
   * waits until the process has exited. Throws unless it exited with code 0.
   */
  async shutdown(): Promise<void> {
    const child = this.#process;
    if (child === null) return;
    const exited = child.exitCode !== null
      ? Promise.resolve(child.exitCode)
      : new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    const client = oneShotClient(this.url);
    try {
      await client.connect();
      // Redis closes the connection instead of replying to a successful SHUTDOWN.
      await client.call('SHUTDOWN').catch(() => undefined);
    } finally {
      client.disconnect();
    }
    const code = await exited;
    this.#process = null;
    if (code !== 0) throw new Error(`redis-server on port ${this.port} exited with code ${code} after SHUTDOWN: ${this.logTail()}`);
  }

  /** Shuts the server down and starts it again on the same port and directory. */
  async restart(): Promise<void> {
    await this.shutdown();
    await this.launch();
  }

  /** Stops the server and deletes its directory. */
  async stop(): Promise<void> {
    const child = this.#process;
    this.#process = null;
    if (child !== null && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.directory, { recursive: true, force: true });
  }

  /** Returns PONG, or 'unreachable' when the server cannot be reached. */
  async ping(): Promise<string> {
    const client = oneShotClient(this.url);
    try {
      await client.connect();
      return String(await client.ping());
    } catch {
      return 'unreachable';
    } finally {
      client.disconnect();
    }
  }

  /** Returns the last lines of the server's log, for an error message. */
  logTail(lines = 10): string {
    try {
      return readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
