import { MAX_IDENTIFIER_BYTES } from './constants.js';

/**
 * Parameters of a `postgres-role-password` credential in the inventory. A type alias rather than
 * an interface, so that it is assignable to the registry's `Record<string, unknown>` params.
 */
export type PostgresRolePasswordParams = {
  /** The role whose password rekey rotates. */
  role: string;
  /** Host that verify logs in to; defaults to the admin URL's host. */
  host?: string;
  /** Port that verify logs in to; defaults to the admin URL's port, then 5432. */
  port?: number;
  /** Database that verify logs in to; defaults to the admin URL's database, then `postgres`. */
  database?: string;
  /** Name of the environment variable that contains rekey's admin connection URL. */
  adminUrlEnv?: string;
};

export const POSTGRES_ROLE_PASSWORD_PARAMS_SCHEMA = {
  type: 'object',
  properties: {
    role: { type: 'string', minLength: 1, maxLength: MAX_IDENTIFIER_BYTES, description: 'Role whose password rekey rotates.' },
    host: { type: 'string', minLength: 1, description: "Host that verify logs in to; defaults to the admin URL's host." },
    port: { type: 'integer', minimum: 1, maximum: 65535, description: "Port that verify logs in to; defaults to the admin URL's port." },
    database: {
      type: 'string', minLength: 1, maxLength: MAX_IDENTIFIER_BYTES,
      description: "Database that verify logs in to; defaults to the admin URL's database.",
    },
    adminUrlEnv: {
      type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description: "Environment variable that contains rekey's admin connection URL (default REKEY_POSTGRES_URL).",
    },
  },
  required: ['role'],
  additionalProperties: false,
} as const;
