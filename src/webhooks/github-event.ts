import type { SecretValue } from '../secret.js';
import { invalidPayload, PayloadReader } from './payload-reader.js';

/**
 * The `X-GitHub-Event` deliveries rekey handles. GitHub sends `ping` when a webhook is created and
 * `secret_scanning_alert` for activity on a secret scanning alert.
 */
export type GithubWebhookEvent = GithubPingEvent | GithubSecretScanningAlertEvent;

export interface GithubPingEvent {
  event: 'ping';
  hookId: number;
  /** A random GitHub zen phrase; null when absent. */
  zen: string | null;
}

/** The validity GitHub last measured for the secret: whether the provider still accepts it. */
export type GithubSecretValidity = 'active' | 'inactive' | 'unknown';

export interface GithubSecretScanningAlertEvent {
  event: 'secret_scanning_alert';
  /** For example created, reopened, resolved, validated, publicly_leaked. Not restricted, because GitHub adds actions. */
  action: string;
  alertNumber: number;
  owner: string;
  repo: string;
  /** The provider pattern's slug, for example `aws_access_key_id` or `github_personal_access_token`. */
  secretType: string;
  secretTypeDisplayName: string | null;
  validity: GithubSecretValidity;
  createdAt: string;
  htmlUrl: string | null;
  /**
   * The leaked value, when the payload carries one. GitHub's webhook payload normally does not:
   * its alert object (schema `secret-scanning-alert-webhook` in github/rest-api-description) has
   * no `secret` field, so rekey fetches it with GET /repos/{owner}/{repo}/secret-scanning/alerts/{alert_number}.
   */
  secret: SecretValue | null;
}

const SOURCE = 'GitHub secret_scanning_alert payload';
const VALIDITIES: readonly string[] = ['active', 'inactive', 'unknown'];

/** Maximum length of an event name quoted in an error, because the signature does not cover the header. */
const MAX_QUOTED_EVENT_LENGTH = 64;

/**
 * Validates a GitHub webhook delivery whose signature has already been verified. `event` is the
 * `X-GitHub-Event` header and `body` the parsed JSON. Throws RekeyError('INVALID_PARAMETERS')
 * naming the unsupported event or the missing or invalid field.
 */
export function parseGithubSecretScanningEvent(event: string, body: unknown): GithubWebhookEvent {
  if (event === 'ping') return parsePing(body);
  if (event === 'secret_scanning_alert') return parseAlertEvent(body);

  const quoted = JSON.stringify(event.slice(0, MAX_QUOTED_EVENT_LENGTH));
  throw invalidPayload('GitHub webhook', `unsupported X-GitHub-Event ${quoted}: subscribe the webhook to secret_scanning_alert only`);
}

function parsePing(body: unknown): GithubPingEvent {
  const payload = PayloadReader.of('GitHub ping payload', body);
  return { event: 'ping', hookId: payload.integer('hook_id', 1), zen: payload.optionalString('zen') };
}

function parseAlertEvent(body: unknown): GithubSecretScanningAlertEvent {
  const payload = PayloadReader.of(SOURCE, body);
  const action = payload.string('action');
  const alert = payload.object('alert');
  const repository = payload.object('repository');

  return {
    event: 'secret_scanning_alert',
    action,
    alertNumber: alert.integer('number', 1),
    owner: repository.object('owner').string('login'),
    repo: repository.string('name'),
    secretType: alert.string('secret_type'),
    secretTypeDisplayName: alert.optionalString('secret_type_display_name'),
    validity: readValidity(alert),
    createdAt: alert.dateTime('created_at'),
    htmlUrl: alert.optionalString('html_url'),
    secret: alert.secret('secret'),
  };
}

/**
 * Reads `alert.validity`. Payloads older than the field (GitHub added it in February 2024) carry
 * none, and GitHub may add values, so both read as "unknown" instead of rejecting an alert about
 * a leaked credential.
 */
function readValidity(alert: PayloadReader): GithubSecretValidity {
  const validity = alert.optionalString('validity');
  if (validity === null || !VALIDITIES.includes(validity)) return 'unknown';
  return validity as GithubSecretValidity;
}
