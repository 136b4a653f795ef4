export interface GcpSecretManagerParams {
  /** The project id of the secret. */
  project: string;
  /** The secret id. rekey creates a missing secret, and a pending-value secret named `<secret>-rekey-pending` beside it. */
  secret: string;
}

/**
 * Project ids are 6 to 30 lower-case letters, digits and hyphens. Secret ids are letters, digits,
 * hyphens and underscores. 241 characters leave room for the `-rekey-pending` suffix within the
 * limit of 255.
 */
export const GCP_SECRET_MANAGER_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['project', 'secret'],
  properties: {
    project: { type: 'string', pattern: '^[a-z][a-z0-9-]{4,28}[a-z0-9]$' },
    secret: { type: 'string', minLength: 1, maxLength: 241, pattern: '^[\\w-]+$' },
  },
} as const;
