import type { SecretValue } from '../secret.js';
import { PayloadReader } from './payload-reader.js';

/**
 * The bodies a GitGuardian custom webhook delivers, per docs.gitguardian.com, "Custom webhook",
 * sections "How to test the webhook" and "Payload structure": event payloads (`action` plus an
 * `incident`, and an `occurrence` for new_occurrence) and the test message sent from the
 * workspace settings.
 *
 * Event payloads carry no secret value. They identify the secret by its `secret_hash` and
 * `hmsl_hash`, the detector, the incident id and, for a new occurrence, where it was found. Only
 * the test message carries secrets in plain text, in `matches[].match`.
 */
export type GitGuardianEvent = GitGuardianIncidentEvent | GitGuardianTestMessage;

export interface GitGuardianDetector {
  /** The detector's slug, for example `aws_iam` or `generic_password`. */
  name: string;
  displayName: string | null;
  groupName: string | null;
}

export interface GitGuardianOccurrence {
  id: number;
  /** The link to the commit or file where GitGuardian found the secret. */
  url: string | null;
  filepath: string | null;
  /** The commit SHA; internal monitoring only. */
  sha: string | null;
  /** The monitored source, for example https://github.com/user/repo. */
  sourceUrl: string | null;
}

export interface GitGuardianIncidentEvent {
  kind: 'incident';
  /** For example incident_triggered, incident_regression, new_occurrence, incident_resolved. Not restricted, because GitGuardian adds events. */
  action: string;
  /** When GitGuardian sent the event (the payload's `timestamp`). */
  occurredAt: string;
  incidentId: number;
  /** When the incident was detected (`incident.date`). */
  incidentDate: string;
  detector: GitGuardianDetector;
  /** For example valid, invalid, no_checker, not_checked. */
  validity: string | null;
  /** For example triggered, assigned, resolved, ignored. */
  status: string | null;
  severity: string | null;
  secretRevoked: boolean | null;
  secretHash: string | null;
  hmslHash: string | null;
  gitguardianUrl: string | null;
  /** Present on new_occurrence events. */
  occurrence: GitGuardianOccurrence | null;
  /** Always empty: event payloads carry no secret value. Kept so callers handle both kinds alike. */
  secrets: SecretValue[];
}

/** The test message a workspace admin sends from the webhook settings. */
export interface GitGuardianTestMessage {
  kind: 'test';
  /** The payload's `type`, the detector's display name, for example "Welcome Message Token". */
  detectorName: string;
  gitguardianUrl: string | null;
  /** The matched values, in plain text in the payload, wrapped as they are read. */
  secrets: SecretValue[];
}

const SOURCE = 'GitGuardian webhook payload';

/**
 * Validates a GitGuardian custom webhook body whose signature has already been verified. A body
 * with `action` is an event; a body without it but with `matches` is the test message. Throws
 * RekeyError('INVALID_PARAMETERS') naming the missing or invalid field.
 */
export function parseGitGuardianEvent(body: unknown): GitGuardianEvent {
  const payload = PayloadReader.of(SOURCE, body);
  if (!payload.has('action') && payload.has('matches')) return parseTestMessage(payload);
  return parseIncidentEvent(payload);
}

function parseIncidentEvent(payload: PayloadReader): GitGuardianIncidentEvent {
  const action = payload.string('action');
  const occurredAt = payload.dateTime('timestamp');
  const incident = payload.object('incident');
  const detector = incident.object('detector');
  const occurrence = payload.optionalObject('occurrence');

  return {
    kind: 'incident',
    action,
    occurredAt,
    incidentId: incident.integer('id', 1),
    incidentDate: incident.dateTime('date'),
    detector: {
      name: detector.string('name'),
      displayName: detector.optionalString('display_name'),
      groupName: detector.optionalString('detector_group_name'),
    },
    validity: incident.optionalString('validity'),
    status: incident.optionalString('status'),
    severity: incident.optionalString('severity'),
    secretRevoked: incident.optionalBoolean('secret_revoked'),
    secretHash: incident.optionalString('secret_hash'),
    hmslHash: incident.optionalString('hmsl_hash'),
    gitguardianUrl: incident.optionalString('gitguardian_url'),
    occurrence: occurrence === null ? null : parseOccurrence(occurrence),
    secrets: [],
  };
}

function parseOccurrence(occurrence: PayloadReader): GitGuardianOccurrence {
  const source = occurrence.optionalObject('source');
  return {
    id: occurrence.integer('id', 1),
    url: occurrence.optionalString('url'),
    filepath: occurrence.optionalString('filepath'),
    sha: occurrence.optionalString('sha'),
    sourceUrl: source === null ? null : source.optionalString('url'),
  };
}

function parseTestMessage(payload: PayloadReader): GitGuardianTestMessage {
  const detectorName = payload.string('type');
  const gitguardianUrl = payload.optionalString('gitguardian_link');
  const matches = payload.array('matches');
  const secrets: SecretValue[] = [];
  for (let index = 0; index < matches.length; index += 1) {
    const secret = payload.element('matches', matches, index).secret('match');
    if (secret !== null) secrets.push(secret);
  }

  return { kind: 'test', detectorName, gitguardianUrl, secrets };
}
