import { RekeyError } from '../../src/errors.js';

/** Maximum length of a secret's path, in characters. */
export const MAX_PATH_LENGTH = 256;

/** Slash-separated segments of letters, digits, dots, underscores and hyphens, such as `prod/app/aws`. */
const PATH_PATTERN = '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$';

/** Parameters of a file-store target: the logical name of the secret inside the store file. */
export interface FileStoreParams {
  path: string;
}

export const paramsSchema: Record<string, unknown> = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_PATH_LENGTH,
      pattern: PATH_PATTERN,
      description: 'Logical name of the secret in the store file, such as prod/app/aws.',
    },
  },
};

const pathExpression = new RegExp(PATH_PATTERN);

/**
 * Throws INVALID_PARAMETERS unless `params` matches `paramsSchema`. The inventory loader checks
 * the schema already; this guards callers that build parameters in code.
 */
export function validateParams(params: unknown): FileStoreParams {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    throw new RekeyError('INVALID_PARAMETERS', 'file store parameters must be an object with a "path"');
  }
  const extra = Object.keys(params).filter((name) => name !== 'path');
  if (extra.length > 0) {
    throw new RekeyError('INVALID_PARAMETERS', `file store parameters have unknown fields: ${extra.join(', ')}`);
  }
  const { path } = params as { path?: unknown };
  validatePath(path);
  return { path };
}

/** Throws INVALID_PARAMETERS unless `path` is a valid secret path. */
export function validatePath(path: unknown): asserts path is string {
  if (typeof path !== 'string') {
    throw new RekeyError('INVALID_PARAMETERS', 'file store parameter "path" is missing or not a string');
  }
  if (path.length > MAX_PATH_LENGTH || !pathExpression.test(path)) {
    throw new RekeyError(
      'INVALID_PARAMETERS',
      `invalid file store path ${JSON.stringify(path.slice(0, MAX_PATH_LENGTH))}: expected at most ${MAX_PATH_LENGTH} ` +
        'characters in slash-separated segments of letters, digits, ".", "_" and "-", such as prod/app/aws',
    );
  }
}
