export interface GcpServiceAccountKeyParams {
  /** The email of the service account whose key rekey rotates. */
  serviceAccount: string;
  /**
   * The project of the service account. The default `-` lets IAM infer it from the email, but
   * then IAM can report a missing account as 403 instead of 404.
   */
  project?: string;
}

/**
 * A service account email (IAM: 6 to 30 character account id, then `@` and the domain), and a
 * project id of 6 to 30 lower-case letters, digits and hyphens, or `-`.
 */
export const GCP_SERVICE_ACCOUNT_KEY_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['serviceAccount'],
  properties: {
    serviceAccount: { type: 'string', minLength: 3, maxLength: 254, pattern: '^[a-z0-9][a-z0-9-]*@[a-z0-9.-]+$' },
    project: { type: 'string', pattern: '^(-|[a-z][a-z0-9-]{4,28}[a-z0-9])$' },
  },
} as const;
