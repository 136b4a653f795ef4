import type { SecretValue } from '../secret.js';
import { invalidPayload, PayloadReader } from './payload-reader.js';

/**
 * One finding of `trufflehog --json`, which prints one JSON object a line on stdout (see
 * `pkg/output/json.go` in trufflesecurity/trufflehog). rekey keeps the fields that identify the
 * credential. It drops `SourceMetadata`, `ExtraData` and `StructuredData`, whose shape depends
 * on the source and the detector, and which may carry secret material of their own.
 */
export interface TruffleHogFinding {
  detectorName: string;
  /** TruffleHog's numeric `DetectorType` enum (detectorspb.DetectorType), for example 2 for AWS. */
  detectorType: number;
  /** Whether TruffleHog confirmed with the provider that the credential works. */
  verified: boolean;
  /** The matched secret, or for some detectors the credential's id; null when empty or absent. */
  raw: SecretValue | null;
  /** For multi-part credentials, the id and the secret together (an AWS key pair); null when empty or absent. */
  rawV2: SecretValue | null;
  /** For example "trufflehog - git"; empty when absent. */
  sourceName: string;
  /** TruffleHog's display form of the credential, usually its id; empty when absent. */
  redacted: string;
}

const SOURCE = 'TruffleHog findings';

/**
 * Parses the findings of `trufflehog --json`: one JSON object, a JSON array of objects, or NDJSON
 * (one object a line, blank lines skipped). Throws RekeyError('INVALID_PARAMETERS') naming the
 * line or array element and the field. Empty input returns no findings, as TruffleHog prints
 * nothing when it finds nothing.
 */
export function parseTruffleHogFindings(raw: string): TruffleHogFinding[] {
  const text = raw.trim();
  if (text === '') return [];

  const document = parseJson(text);
  if (document.ok) {
    if (!Array.isArray(document.value)) return [parseFinding(document.value, 'TruffleHog finding')];
    return document.value.map((element, index) => parseFinding(element, `TruffleHog finding [${index}]`));
  }
  return parseLines(raw);
}

function parseLines(raw: string): TruffleHogFinding[] {
  const findings: TruffleHogFinding[] = [];
  const lines = raw.split(/\r?\n/);
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index] ?? '';
    if (line.trim() === '') continue;

    const lineNumber = index + 1;
    const parsed = parseJson(line);
    if (!parsed.ok) throw invalidPayload(SOURCE, `line ${lineNumber} is not valid JSON`);
    findings.push(parseFinding(parsed.value, `TruffleHog finding on line ${lineNumber}`));
  }
  return findings;
}

/**
 * Parses JSON without letting the parser's message escape, because V8's SyntaxError can quote
 * part of the input, here a line holding a secret. The error is dropped, not chained as a cause
 * that a logger would print.
 */
function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

function parseFinding(value: unknown, source: string): TruffleHogFinding {
  const finding = PayloadReader.of(source, value);
  return {
    detectorName: finding.string('DetectorName'),
    detectorType: finding.integer('DetectorType', 0),
    verified: finding.boolean('Verified'),
    raw: finding.secret('Raw'),
    rawV2: finding.secret('RawV2'),
    sourceName: finding.optionalString('SourceName') ?? '',
    redacted: finding.optionalString('Redacted') ?? '',
  };
}
