/**
 * Parameters of a `redis-acl-password` credential in the inventory. A type alias rather than an
 * interface, so that it is assignable to the registry's `Record<string, unknown>` params.
 */
export type RedisAclPasswordParams = {
  /** The ACL user whose password rekey rotates. */
  user: string;
  /** Name of the environment variable that contains rekey's admin connection URL. */
  adminUrlEnv?: string;
};

/** ACL user names cannot be empty or contain spaces (ACL SETUSER rejects them). */
export const REDIS_ACL_PASSWORD_PARAMS_SCHEMA = {
  type: 'object',
  properties: {
    user: { type: 'string', minLength: 1, pattern: '^\\S+$', description: 'ACL user whose password rekey rotates.' },
    adminUrlEnv: {
      type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description: "Environment variable that contains rekey's admin connection URL (default REKEY_REDIS_ACL_URL).",
    },
  },
  required: ['user'],
  additionalProperties: false,
} as const;
