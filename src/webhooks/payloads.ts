/**
 * Parsers that validate and normalise scanner webhook bodies once their signature has passed
 * (see signatures.ts). Each wraps every secret value in a SecretValue as it reads it, and throws
 * RekeyError('INVALID_PARAMETERS') with a message that names the field and never quotes a value.
 */
export {
  parseGithubSecretScanningEvent,
  type GithubPingEvent,
  type GithubSecretScanningAlertEvent,
  type GithubSecretValidity,
  type GithubWebhookEvent,
} from './github-event.js';
export {
  parseGitGuardianEvent,
  type GitGuardianDetector,
  type GitGuardianEvent,
  type GitGuardianIncidentEvent,
  type GitGuardianOccurrence,
  type GitGuardianTestMessage,
} from './gitguardian-event.js';
export { parseTruffleHogFindings, type TruffleHogFinding } from './trufflehog-findings.js';
