import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const DEMO_DIR = '.rekey/demo';
/** The template of the demo's settings; the demo writes this checkout's copy under DEMO_DIR. */
const TEMPLATE_ENV_FILE = 'config/demo/demo.env';
const TEMPLATE_INVENTORY = 'config/demo/inventory.yaml';
const TEMPLATE_USER = 'rekey-demo-app';

/** One checkout's demo: its own queue, Redis key prefix and ACL user on a shared Redis. */
export interface DemoInstance {
  id: string;
  /** The Redis ACL user the demo rotates. */
  user: string;
  /** The only keys the demo user may touch: `<prefix>*`. */
  keyPrefix: string;
  /** The settings file the README's walkthrough loads into a shell. */
  envFile: string;
  env: Record<string, string>;
}

/** Reads KEY=VALUE lines, skipping blank lines and comments. */
function readEnvFile(path: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (match !== null) entries[match[1]!] = match[2]!.trim();
  }
  return entries;
}

/**
 * Prepares this checkout's demo. Checkouts on one machine share its Redis, so each gets an id
 * (stored in DEMO_DIR) that names its queue, key prefix and ACL user. Without it, one checkout's
 * worker would run another's rotations with the wrong store.
 */
export function prepareDemoInstance(): DemoInstance {
  const idFile = `${DEMO_DIR}/instance-id`;
  if (!existsSync(idFile)) writeFileSync(idFile, `${randomBytes(3).toString('hex')}\n`, { mode: 0o600 });
  const id = readFileSync(idFile, 'utf8').trim();
  const user = `${TEMPLATE_USER}-${id}`;

  const inventoryFile = `${DEMO_DIR}/inventory.yaml`;
  writeFileSync(inventoryFile, readFileSync(TEMPLATE_INVENTORY, 'utf8').split(`user: ${TEMPLATE_USER}`).join(`user: ${user}`), { mode: 0o600 });

  const env = {
    ...readEnvFile(TEMPLATE_ENV_FILE),
    REKEY_INVENTORY: inventoryFile,
    REKEY_QUEUE: `demo-rotations-${id}`,
    REKEY_REDIS_PREFIX: `rekey-demo-${id}`,
  };
  const envFile = `${DEMO_DIR}/demo.env`;
  const lines = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  writeFileSync(envFile, `# This checkout's demo settings, written by npm run demo from ${TEMPLATE_ENV_FILE}.\n${lines.join('\n')}\n`, { mode: 0o600 });
  return { id, user, keyPrefix: `demo-app-${id}:`, envFile, env };
}
