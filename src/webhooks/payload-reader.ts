import { RekeyError } from '../errors.js';
import { SecretValue } from '../secret.js';

type JsonObject = Record<string, unknown>;

/** An RFC 3339 date-time, the format of every timestamp GitHub and GitGuardian send. */
const DATE_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Names the JSON type of a value, so that an error message can describe a value without quoting it. */
export function describeJsonType(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

export function invalidPayload(source: string, problem: string): RekeyError {
  return new RekeyError('INVALID_PARAMETERS', `${source}: ${problem}`);
}

/**
 * Reads validated fields from one JSON object of a webhook payload. Each failure throws
 * RekeyError('INVALID_PARAMETERS') with the payload's name, the field's path and, for a wrong
 * type, the type received. Messages never quote a field's value, because it may be a secret.
 */
export class PayloadReader {
  private constructor(
    private readonly source: string,
    private readonly fields: JsonObject,
    private readonly path: string,
  ) {}

  /** Starts reading `value`, which must be a JSON object; `source` prefixes every error message. */
  static of(source: string, value: unknown): PayloadReader {
    if (!isJsonObject(value)) throw invalidPayload(source, `expected a JSON object, got ${describeJsonType(value)}`);
    return new PayloadReader(source, value, '');
  }

  fieldPath(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  fail(key: string, problem: string): never {
    throw invalidPayload(this.source, `${this.fieldPath(key)} ${problem}`);
  }

  /** Returns true when the field is present with a value other than null. */
  has(key: string): boolean {
    const value = this.fields[key];
    return value !== undefined && value !== null;
  }

  private required(key: string): unknown {
    if (!this.has(key)) this.fail(key, 'is missing');
    return this.fields[key];
  }

  private wrongType(key: string, expected: string, value: unknown): never {
    return this.fail(key, `must be ${expected}, got ${describeJsonType(value)}`);
  }

  object(key: string): PayloadReader {
    const value = this.required(key);
    if (!isJsonObject(value)) this.wrongType(key, 'an object', value);
    return new PayloadReader(this.source, value, this.fieldPath(key));
  }

  optionalObject(key: string): PayloadReader | null {
    return this.has(key) ? this.object(key) : null;
  }

  /** Reads a string that must not be empty. */
  string(key: string): string {
    const value = this.required(key);
    if (typeof value !== 'string') this.wrongType(key, 'a string', value);
    if (value === '') this.fail(key, 'must not be empty');
    return value;
  }

  /** Reads a string that may be absent or null (returned as null) or empty. */
  optionalString(key: string): string | null {
    if (!this.has(key)) return null;
    const value = this.fields[key];
    if (typeof value !== 'string') this.wrongType(key, 'a string', value);
    return value;
  }

  integer(key: string, minimum: number): number {
    const value = this.required(key);
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) this.wrongType(key, 'an integer', value);
    if (value < minimum) this.fail(key, `must be at least ${minimum}`);
    return value;
  }

  optionalInteger(key: string, minimum: number): number | null {
    return this.has(key) ? this.integer(key, minimum) : null;
  }

  boolean(key: string): boolean {
    const value = this.required(key);
    if (typeof value !== 'boolean') this.wrongType(key, 'a boolean', value);
    return value;
  }

  optionalBoolean(key: string): boolean | null {
    return this.has(key) ? this.boolean(key) : null;
  }

  /** Reads an RFC 3339 date-time string, such as 2024-05-01T12:00:00Z, and returns it unchanged. */
  dateTime(key: string): string {
    const value = this.string(key);
    if (!DATE_TIME_PATTERN.test(value) || Number.isNaN(Date.parse(value))) {
      this.fail(key, 'must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z');
    }
    return value;
  }

  array(key: string): unknown[] {
    const value = this.required(key);
    if (!Array.isArray(value)) this.wrongType(key, 'an array', value);
    return value;
  }

  /** Returns a reader for element `index` of an array field, which must be an object. */
  element(key: string, elements: readonly unknown[], index: number): PayloadReader {
    const value = elements[index];
    const path = `${this.fieldPath(key)}[${index}]`;
    if (!isJsonObject(value)) throw invalidPayload(this.source, `${path} must be an object, got ${describeJsonType(value)}`);
    return new PayloadReader(this.source, value, path);
  }

  /**
   * Wraps a secret field in a SecretValue as it is read. Absent, null and empty fields return null.
   * A field of another type is an error that names only the type.
   */
  secret(key: string): SecretValue | null {
    if (!this.has(key)) return null;
    const value = this.fields[key];
    if (typeof value !== 'string') this.wrongType(key, 'a string', value);
    return value === '' ? null : SecretValue.fromString(value);
  }
}
