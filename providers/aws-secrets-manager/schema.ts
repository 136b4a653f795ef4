export interface AwsSecretsManagerParams {
  /** The secret's name or ARN. rekey creates a missing secret only when given a name. */
  secretId: string;
}

/** A secret id is a name or an ARN of 1 to 2048 characters (Secrets Manager API reference, SecretId). */
export const AWS_SECRETS_MANAGER_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['secretId'],
  properties: {
    secretId: { type: 'string', minLength: 1, maxLength: 2048 },
  },
} as const;
