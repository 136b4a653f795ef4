/** Identifiers of environments and credentials: they appear in URLs, Redis keys and audit records. */
export const ID_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$';

/** A duration: whole seconds, or a number with a unit (`90s`, `15m`, `2h`, `7d`). */
export const DURATION_PATTERN = '^[0-9]+(s|m|h|d)?$';

/**
 * JSON Schema of the inventory file. Provider `params` and store target parameters are checked
 * afterwards against the schema that each provider and store declares.
 */
export const INVENTORY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['environments'],
  properties: {
    environments: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: ID_PATTERN },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['credentials'],
        properties: {
          description: { type: 'string', maxLength: 500 },
          dependencies: { type: 'array', items: { type: 'string', minLength: 1 } },
          credentials: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['id', 'kind', 'stores'],
              properties: {
                id: { type: 'string', pattern: ID_PATTERN },
                kind: { type: 'string', minLength: 1 },
                description: { type: 'string', maxLength: 500 },
                params: { type: 'object' },
                gracePeriod: { type: 'string', pattern: DURATION_PATTERN },
                rotateEvery: { type: 'string', pattern: DURATION_PATTERN },
                stores: {
                  type: 'array',
                  minItems: 1,
                  items: {
                    type: 'object',
                    required: ['store'],
                    properties: { store: { type: 'string', minLength: 1 } },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;

export interface StoreTarget {
  store: string;
  params: Record<string, unknown>;
}

export interface CredentialEntry {
  id: string;
  kind: string;
  description?: string;
  params: Record<string, unknown>;
  /** Time between disabling and deleting the old credential in scheduled mode, in milliseconds. */
  gracePeriodMs: number;
  /** Interval of the scheduled rotations the workers start on their own, in milliseconds, if any. */
  rotateEveryMs?: number;
  stores: StoreTarget[];
}

export interface EnvironmentEntry {
  name: string;
  description?: string;
  /** Dependency files (lockfiles) of what runs in the environment, relative to the inventory file. */
  dependencies?: string[];
  credentials: CredentialEntry[];
}

export interface Inventory {
  /** The file it was loaded from, for messages. */
  source: string;
  environments: Map<string, EnvironmentEntry>;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Converts a duration string (`90`, `90s`, `15m`, `2h`, `7d`) to milliseconds. */
export function parseDuration(text: string): number {
  const match = /^([0-9]+)(s|m|h|d)?$/.exec(text);
  if (match === null) throw new RangeError(`invalid duration "${text}": use whole seconds or a number with s, m, h or d`);
  return Number(match[1]) * UNIT_MS[match[2] ?? 's']!;
}
