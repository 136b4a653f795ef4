import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { parseDependencyFile, type Dependency, type DependencyList } from '../src/advisories/index.js';
import { InventoryError } from '../src/inventory/load.js';
import type { Inventory } from '../src/inventory/schema.js';

/** One dependency file of an environment, as the API reports it. */
export interface DependencyFileSummary {
  file: string;
  /** `inventory` for a file the inventory names, `upload` for one sent with PUT. */
  source: 'inventory' | 'upload';
  format: string;
  packages: number;
  updatedAt: string | null;
}

interface StoredUpload {
  format: string;
  dependencies: Dependency[];
  uploadedAt: string;
}

/**
 * What each environment runs: the dependency files its inventory entry names (read at start-up)
 * and the ones uploaded through the API (kept in Redis, one hash per environment, so every API
 * replica reads the same list).
 */
export type InventoryDependencies = ReadonlyMap<string, ReadonlyArray<{ file: string; list: DependencyList }>>;

/** Reads every dependency file the inventory names, relative to the inventory file. */
export function readInventoryDependencies(inventory: Inventory): InventoryDependencies {
  const fromInventory = new Map<string, Array<{ file: string; list: DependencyList }>>();
  for (const environment of inventory.environments.values()) {
    const files = environment.dependencies ?? [];
    fromInventory.set(environment.name, files.map((file) => {
      const path = resolve(dirname(inventory.source), file);
      try {
        return { file, list: parseDependencyFile(basename(path), readFileSync(path, 'utf8')) };
      } catch (error) {
        throw new InventoryError([{ file: inventory.source, line: 1, key: `environments.${environment.name}.dependencies`, message: `cannot read ${path}: ${(error as Error).message}` }]);
      }
    }));
  }
  return fromInventory;
}

export class DependencyIndex {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly fromInventory: InventoryDependencies,
  ) {}

  private key(environment: string): string {
    return `${this.prefix}:dependencies:${environment}`;
  }

  /** Stores an uploaded dependency file, replacing an earlier upload of the same name. */
  async upload(environment: string, file: string, list: DependencyList): Promise<void> {
    const stored: StoredUpload = { format: list.format, dependencies: list.dependencies, uploadedAt: new Date().toISOString() };
    await this.redis.hset(this.key(environment), file, JSON.stringify(stored));
  }

  /** Removes an uploaded dependency file; returns false if there was none of that name. */
  async remove(environment: string, file: string): Promise<boolean> {
    return (await this.redis.hdel(this.key(environment), file)) === 1;
  }

  private async uploads(environment: string): Promise<Array<[string, StoredUpload]>> {
    const entries = await this.redis.hgetall(this.key(environment));
    return Object.entries(entries).map(([file, text]) => [file, JSON.parse(text) as StoredUpload]);
  }

  async describe(environment: string): Promise<DependencyFileSummary[]> {
    const summaries: DependencyFileSummary[] = (this.fromInventory.get(environment) ?? []).map(({ file, list }) => ({
      file, source: 'inventory', format: list.format, packages: list.dependencies.length, updatedAt: null,
    }));
    for (const [file, stored] of await this.uploads(environment)) {
      summaries.push({ file, source: 'upload', format: stored.format, packages: stored.dependencies.length, updatedAt: stored.uploadedAt });
    }
    return summaries;
  }

  /** Collects every environment's dependencies, from the inventory and from uploads. */
  async all(environments: Iterable<string>): Promise<Map<string, Dependency[]>> {
    const result = new Map<string, Dependency[]>();
    for (const environment of environments) {
      const dependencies = (this.fromInventory.get(environment) ?? []).flatMap(({ list }) => list.dependencies);
      for (const [, stored] of await this.uploads(environment)) dependencies.push(...stored.dependencies);
      result.set(environment, dependencies);
    }
    return result;
  }
}
