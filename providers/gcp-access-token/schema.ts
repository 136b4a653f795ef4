import { MAX_LIFETIME_SECONDS, MIN_LIFETIME_SECONDS } from './constants.js';

export interface GcpAccessTokenParams {
  /** The email of the service account whose access token rekey mints. */
  serviceAccount: string;
  /** OAuth scopes of the token. Default: cloud-platform. */
  scopes?: string[];
  /** Lifetime of the token in seconds. Default 3600. Rotations must run more often than this. */
  lifetimeSeconds?: number;
}

export const GCP_ACCESS_TOKEN_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['serviceAccount'],
  properties: {
    serviceAccount: { type: 'string', minLength: 3, maxLength: 254, pattern: '^[a-z0-9][a-z0-9-]*@[a-z0-9.-]+$' },
    scopes: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^https://' } },
    lifetimeSeconds: { type: 'integer', minimum: MIN_LIFETIME_SECONDS, maximum: MAX_LIFETIME_SECONDS },
  },
} as const;
