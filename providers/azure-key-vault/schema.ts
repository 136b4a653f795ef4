import { DURATION_PATTERN } from '../../src/inventory/schema.js';
import { MAX_SECRET_NAME_LENGTH } from './constants.js';

export interface AzureKeyVaultParams {
  /** The vault's URL, such as https://my-vault.vault.azure.net. */
  vaultUrl: string;
  /** The secret consumers read. */
  name: string;
  /** How long the replaced version stays enabled after a promote, as a duration (`0` disables it at once). */
  disablePreviousAfter?: string;
}

export const AZURE_KEY_VAULT_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['vaultUrl', 'name'],
  properties: {
    vaultUrl: { type: 'string', pattern: '^https://[^/?#]+/?$' },
    name: { type: 'string', pattern: `^[0-9a-zA-Z-]{1,${MAX_SECRET_NAME_LENGTH}}$` },
    disablePreviousAfter: { type: 'string', pattern: DURATION_PATTERN },
  },
} as const;
