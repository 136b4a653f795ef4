import { RekeyError } from '../../src/errors.js';
import { PATH_SEGMENT_PATTERN } from '../vault-shared/index.js';
import { DEFAULT_MOUNT } from './constants.js';

/**
 * Parameters of a `vault-approle-secret-id` credential in the inventory. A type alias rather than
 * an interface, so that it is assignable to the registry's `Record<string, unknown>` params.
 */
export type VaultApproleSecretIdParams = {
  /** The AppRole role whose secret ID rekey rotates. */
  role: string;
  /** Mount path of the AppRole auth method, without the `auth/` prefix. Default `approle`. */
  mount?: string;
};

const ROLE_PATTERN = `^${PATH_SEGMENT_PATTERN}$`;
const MOUNT_PATTERN = `^${PATH_SEGMENT_PATTERN}(/${PATH_SEGMENT_PATTERN})*$`;
const roleExpression = new RegExp(ROLE_PATTERN);
const mountExpression = new RegExp(MOUNT_PATTERN);

export const VAULT_APPROLE_SECRET_ID_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['role'],
  properties: {
    role: { type: 'string', minLength: 1, maxLength: 4095, pattern: ROLE_PATTERN, description: 'AppRole role whose secret ID rekey rotates.' },
    mount: { type: 'string', minLength: 1, pattern: MOUNT_PATTERN, description: `Mount path of the AppRole auth method without auth/ (default ${DEFAULT_MOUNT}).` },
  },
} as const;

/** Throws INVALID_PARAMETERS unless `params` matches the schema, and returns them with the default mount. */
export function validateParams(params: VaultApproleSecretIdParams): Required<VaultApproleSecretIdParams> {
  const { role, mount = DEFAULT_MOUNT } = params;
  if (typeof role !== 'string' || !roleExpression.test(role)) {
    throw new RekeyError('INVALID_PARAMETERS', `invalid AppRole role ${JSON.stringify(role)}: expected letters, digits, ".", "_" and "-"`);
  }
  if (typeof mount !== 'string' || !mountExpression.test(mount)) {
    throw new RekeyError('INVALID_PARAMETERS', `invalid AppRole mount ${JSON.stringify(mount)}: expected a mount path such as ${DEFAULT_MOUNT}`);
  }
  return { role, mount };
}
