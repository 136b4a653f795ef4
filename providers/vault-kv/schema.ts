import { RekeyError } from '../../src/errors.js';
import { PATH_SEGMENT_PATTERN } from '../vault-shared/index.js';
import { DEFAULT_KV_MOUNT, PENDING_PREFIX } from './constants.js';

/**
 * Parameters of a `vault-kv` store target. A type alias rather than an interface, so that it is
 * assignable to the registry's `Record<string, unknown>` params.
 */
export type VaultKvParams = {
  /** The secret's path under the mount, as consumers read it: `<mount>/data/<path>`. */
  path: string;
  /** Mount path of the KV version 2 engine. Default `secret`. */
  mount?: string;
  /** KV key for each material field, such as `{ accessKeyId: "access_key_id" }`. Unlisted fields keep their names. */
  fields?: Record<string, string>;
};

/** Maximum length of a target's path, in characters. */
export const MAX_PATH_LENGTH = 512;

const PATH_PATTERN = `^${PATH_SEGMENT_PATTERN}(/${PATH_SEGMENT_PATTERN})*$`;
const pathExpression = new RegExp(PATH_PATTERN);

export const VAULT_KV_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: {
      type: 'string', minLength: 1, maxLength: MAX_PATH_LENGTH, pattern: PATH_PATTERN,
      description: `Path of the secret under the mount, such as ci/deployer-aws. Paths under ${PENDING_PREFIX}/ are reserved for rekey.`,
    },
    mount: { type: 'string', minLength: 1, pattern: PATH_PATTERN, description: `Mount path of the KV version 2 engine (default ${DEFAULT_KV_MOUNT}).` },
    fields: {
      type: 'object',
      additionalProperties: { type: 'string', minLength: 1, maxLength: 256 },
      description: 'KV key for each material field, such as {"accessKeyId": "access_key_id"}. Unlisted fields keep their names.',
    },
  },
} as const;

/** A validated target, with the defaults applied. */
export interface VaultKvTarget {
  mount: string;
  path: string;
  /** KV key by material field name. */
  fields: Record<string, string>;
}

function invalid(message: string): RekeyError {
  return new RekeyError('INVALID_PARAMETERS', message);
}

/**
 * Throws INVALID_PARAMETERS unless `params` matches the schema. The inventory loader checks the
 * schema already. This guards callers that build parameters in code, and checks what the schema
 * cannot: the reserved prefix and two fields renamed to the same key.
 */
export function validateParams(params: VaultKvParams): VaultKvTarget {
  const { path, mount = DEFAULT_KV_MOUNT, fields = {} } = params;
  if (typeof path !== 'string' || path.length > MAX_PATH_LENGTH || !pathExpression.test(path)) {
    throw invalid(`invalid vault-kv path ${JSON.stringify(path)}: expected at most ${MAX_PATH_LENGTH} characters in slash-separated segments of letters, digits, ".", "_" and "-", such as ci/deployer-aws`);
  }
  if (path === PENDING_PREFIX || path.startsWith(`${PENDING_PREFIX}/`)) {
    throw invalid(`invalid vault-kv path "${path}": paths under ${PENDING_PREFIX}/ contain rekey's pending versions, so choose another path`);
  }
  if (typeof mount !== 'string' || !pathExpression.test(mount)) {
    throw invalid(`invalid vault-kv mount ${JSON.stringify(mount)}: expected a mount path such as ${DEFAULT_KV_MOUNT} or team/kv`);
  }

  const keys = new Map<string, string>();
  for (const [field, key] of Object.entries(fields)) {
    if (typeof key !== 'string' || key === '') throw invalid(`invalid vault-kv fields: the KV key for material field "${field}" is empty or not a string`);
    const other = keys.get(key);
    if (other !== undefined) throw invalid(`invalid vault-kv fields: material fields "${other}" and "${field}" are both renamed to KV key "${key}"`);
    keys.set(key, field);
  }
  return { mount, path, fields: { ...fields } };
}
