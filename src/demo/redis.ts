import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { sleep } from '../engine/poll.js';

async function answers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface DemoRedis {
  url: string;
  /** The throwaway server the demo started, if it had to start one. */
  child: ChildProcess | null;
  stop(): void;
}

/**
 * Returns a Redis for the demo: the one at `url` when it responds, otherwise a throwaway
 * redis-server on a free loopback port that keeps nothing on disk.
 */
export async function ensureDemoRedis(url: string): Promise<DemoRedis> {
  if (await answers(url)) return { url, child: null, stop: () => undefined };

  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error(`nothing responds at ${url} and redis-server is not installed: start Redis or set REDIS_URL`);
  }
  const port = await freeLoopbackPort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const throwaway = `redis://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 50 && !(await answers(throwaway)); attempt += 1) await sleep(100);
  if (!(await answers(throwaway))) {
    child.kill();
    throw new Error(`started redis-server on port ${port}, but it did not respond within 5 s`);
  }
  return { url: throwaway, child, stop: () => child.kill() };
}
