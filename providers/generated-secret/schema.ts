export interface GeneratedSecretParams {
  /** Random bytes in the secret before base64url encoding. */
  bytes?: number;
}

export const GENERATED_SECRET_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    bytes: { type: 'integer', minimum: 16, maximum: 128 },
  },
} as const;
