import type { CredentialProvider, Env, SecretStore } from './contracts.js';
import type { KindCatalogue } from './inventory/load.js';

export interface ProviderEntry {
  kind: string;
  paramsSchema: Record<string, unknown>;
  create(env: Env): CredentialProvider;
}

export interface StoreEntry {
  kind: string;
  paramsSchema: Record<string, unknown>;
  create(env: Env): SecretStore;
}

/**
 * The provider and store kinds available to this process. Instances are created on first use,
 * so a process that never rotates an AWS key never needs AWS settings.
 */
export class Registry implements KindCatalogue {
  readonly #env: Env;
  readonly #providers: Map<string, ProviderEntry>;
  readonly #stores: Map<string, StoreEntry>;
  readonly #providerInstances = new Map<string, CredentialProvider>();
  readonly #storeInstances = new Map<string, SecretStore>();

  constructor(env: Env, providers: readonly ProviderEntry[], stores: readonly StoreEntry[]) {
    this.#env = env;
    this.#providers = new Map(providers.map((entry) => [entry.kind, entry]));
    this.#stores = new Map(stores.map((entry) => [entry.kind, entry]));
  }

  providerSchema(kind: string): Record<string, unknown> | undefined {
    return this.#providers.get(kind)?.paramsSchema;
  }

  storeSchema(kind: string): Record<string, unknown> | undefined {
    return this.#stores.get(kind)?.paramsSchema;
  }

  provider(kind: string): CredentialProvider {
    let instance = this.#providerInstances.get(kind);
    if (instance === undefined) {
      const entry = this.#providers.get(kind);
      if (entry === undefined) throw new Error(`unknown credential kind "${kind}"`);
      instance = entry.create(this.#env);
      this.#providerInstances.set(kind, instance);
    }
    return instance;
  }

  store(kind: string): SecretStore {
    let instance = this.#storeInstances.get(kind);
    if (instance === undefined) {
      const entry = this.#stores.get(kind);
      if (entry === undefined) throw new Error(`unknown store kind "${kind}"`);
      instance = entry.create(this.#env);
      this.#storeInstances.set(kind, instance);
    }
    return instance;
  }

  providerKinds(): string[] {
    return [...this.#providers.keys()];
  }

  storeKinds(): string[] {
    return [...this.#stores.keys()];
  }

  async close(): Promise<void> {
    const closing = [...this.#providerInstances.values(), ...this.#storeInstances.values()].map((instance) => instance.close?.());
    this.#providerInstances.clear();
    this.#storeInstances.clear();
    await Promise.allSettled(closing);
  }
}

/**
 * Builds a registry entry for a provider with typed parameters. The type is erased here because
 * the inventory loader validates every credential's params against `paramsSchema` first.
 */
export function providerEntry<P>(kind: string, paramsSchema: Record<string, unknown>, create: (env: Env) => CredentialProvider<P>): ProviderEntry {
  return { kind, paramsSchema, create: (env) => create(env) as unknown as CredentialProvider };
}

/** Builds a registry entry for a store with typed parameters, validated like a provider's. */
export function storeEntry<P>(kind: string, paramsSchema: Record<string, unknown>, create: (env: Env) => SecretStore<P>): StoreEntry {
  return { kind, paramsSchema, create: (env) => create(env) as unknown as SecretStore };
}
