export interface AwsIamAccessKeyParams {
  /** The IAM user whose access key rekey rotates. */
  userName: string;
}

/** IAM user names: 1 to 64 characters from letters, digits and `+=,.@_-` (IAM API reference, CreateUser). */
export const AWS_IAM_ACCESS_KEY_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['userName'],
  properties: {
    userName: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\w+=,.@-]+$' },
  },
} as const;
