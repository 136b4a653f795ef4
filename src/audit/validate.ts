import { STEPS } from '../contracts.js';
import { SecretValue } from '../secret.js';
import { AUDIT_OUTCOMES, RUN_STEP, type AuditEvent } from './types.js';

/** The JSON form of a `SecretValue`. An audit record never contains it, not even redacted. */
const REDACTED_MARKER = '[redacted]';

const REQUIRED_STRINGS = ['runId', 'environment', 'step', 'actor', 'trigger'] as const;
const OPTIONAL_STRINGS = ['rotationId', 'credentialId', 'provider'] as const;
const KEY_IDS = ['oldKeyId', 'newKeyId'] as const;
const KNOWN_FIELDS = new Set<string>([
  ...REQUIRED_STRINGS, ...OPTIONAL_STRINGS, ...KEY_IDS, 'outcome', 'fingerprints', 'error', 'detail',
]);
const VALID_STEPS = new Set<string>([...STEPS, RUN_STEP]);
const VALID_OUTCOMES = new Set<string>(AUDIT_OUTCOMES);

/**
 * Throws a TypeError unless `event` is a well-formed audit event without any secret value.
 *
 * A value is caught in two forms: a `SecretValue` object anywhere in the event, and the string
 * "[redacted]" in any field or key, which is what a value turns into once it went through JSON.
 * The message names the field, never its content.
 */
export function validateAuditEvent(event: AuditEvent): void {
  const secretField = findSecretValue(event, '');
  if (secretField !== null) {
    throw new TypeError(
      `audit event of run ${String(event.runId)} contains a secret value at "${secretField}". ` +
        'Audit records carry fingerprints, never values, even redacted ones.',
    );
  }

  const fields = event as unknown as Record<string, unknown>;
  const where = `audit event of run ${String(event.runId)}`;
  for (const name of Object.keys(fields)) {
    if (!KNOWN_FIELDS.has(name)) throw new TypeError(`${where} has an unknown field "${name}"`);
  }
  for (const name of REQUIRED_STRINGS) {
    if (typeof fields[name] !== 'string' || fields[name] === '') {
      throw new TypeError(`${where} is missing "${name}" (a non-empty string)`);
    }
  }
  for (const name of OPTIONAL_STRINGS) {
    if (fields[name] !== undefined && typeof fields[name] !== 'string') {
      throw new TypeError(`${where} has an invalid "${name}": expected a string`);
    }
  }
  for (const name of KEY_IDS) {
    const value = fields[name];
    if (value !== undefined && value !== null && typeof value !== 'string') {
      throw new TypeError(`${where} has an invalid "${name}": expected a string or null`);
    }
  }

  if (!VALID_STEPS.has(event.step)) {
    throw new TypeError(`${where} has an unknown step "${event.step}", expected one of ${[...VALID_STEPS].join(', ')}`);
  }
  if (!VALID_OUTCOMES.has(event.outcome)) {
    throw new TypeError(`${where} has an unknown outcome "${String(event.outcome)}", expected one of ${AUDIT_OUTCOMES.join(', ')}`);
  }
  validateNestedFields(event, where);
}

function validateNestedFields(event: AuditEvent, where: string): void {
  if (event.fingerprints !== undefined) {
    if (!isPlainObject(event.fingerprints)) throw new TypeError(`${where} has invalid "fingerprints": expected an object`);
    for (const [name, value] of Object.entries(event.fingerprints)) {
      if (typeof value !== 'string') throw new TypeError(`${where} has an invalid fingerprint "${name}": expected a string`);
    }
  }

  if (event.error !== undefined) {
    const { code, message, retryable } = event.error;
    if (!isPlainObject(event.error) || typeof code !== 'string' || typeof message !== 'string' || typeof retryable !== 'boolean') {
      throw new TypeError(`${where} has an invalid "error": expected { code: string, message: string, retryable: boolean }`);
    }
  }

  if (event.detail !== undefined) {
    if (!isPlainObject(event.detail)) throw new TypeError(`${where} has invalid "detail": expected an object`);
    for (const [name, value] of Object.entries(event.detail)) {
      const valid = value === null || typeof value === 'string' || typeof value === 'boolean' ||
        (typeof value === 'number' && Number.isFinite(value));
      if (!valid) throw new TypeError(`${where} has an invalid detail "${name}": expected a string, finite number, boolean or null`);
    }
  }
}

/** Returns the dotted path of the first secret value in `value`, or null if it contains none. */
function findSecretValue(value: unknown, path: string): string | null {
  if (value instanceof SecretValue) return path;
  if (typeof value === 'string') return value.includes(REDACTED_MARKER) ? path : null;
  if (typeof value !== 'object' || value === null) return null;

  // An object of another class that serialises to the marker, such as a SecretValue from a
  // second copy of this module.
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined || !json.includes(REDACTED_MARKER)) return null;

  for (const [key, item] of Object.entries(value)) {
    const itemPath = path === '' ? key : `${path}.${key}`;
    if (key.includes(REDACTED_MARKER)) return itemPath;
    const found = findSecretValue(item, itemPath);
    if (found !== null) return found;
  }
  return path === '' ? '(the event)' : path;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
