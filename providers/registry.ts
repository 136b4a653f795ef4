import type { Env } from '../src/contracts.js';
import { providerEntry, Registry, storeEntry, type ProviderEntry, type StoreEntry } from '../src/registry.js';
import { createFileStore, FILE_STORE_KIND, paramsSchema as FILE_STORE_PARAMS_SCHEMA } from './file-store/index.js';
import { createGeneratedSecretProvider, GENERATED_SECRET_KIND, GENERATED_SECRET_PARAMS_SCHEMA } from './generated-secret/index.js';

/** Every built-in credential kind. Adding a provider means adding its folder and one line here. */
export const PROVIDERS: readonly ProviderEntry[] = [
  providerEntry(GENERATED_SECRET_KIND, GENERATED_SECRET_PARAMS_SCHEMA, () => createGeneratedSecretProvider()),
];

/** Every built-in secret store kind. */
export const STORES: readonly StoreEntry[] = [
  storeEntry(FILE_STORE_KIND, FILE_STORE_PARAMS_SCHEMA, (env) => createFileStore(env)),
];

export function createRegistry(env: Env): Registry {
  return new Registry(env, PROVIDERS, STORES);
}
