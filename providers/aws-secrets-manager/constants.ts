export const AWS_SECRETS_MANAGER_KIND = 'aws-secrets-manager';

/** Staging labels that Secrets Manager gives a meaning: the version consumers read, and the next one. */
export const CURRENT_LABEL = 'AWSCURRENT';
export const PENDING_LABEL = 'AWSPENDING';

/**
 * Prefix of the staging label that records which key a version contains, so that describe finds the
 * current key id without reading a value. rekey keeps this label only on the current and the
 * pending version, because a secret can carry at most 20 staging labels across its versions
 * (Secrets Manager quotas).
 */
export const KEY_ID_LABEL_PREFIX = 'rekey-key-id:';

/** Maximum length of a staging label (Secrets Manager API reference, VersionStage). */
export const MAX_STAGING_LABEL_LENGTH = 256;

/** Length bounds of a ClientRequestToken, which becomes the version id (Secrets Manager API reference). */
export const MIN_CLIENT_REQUEST_TOKEN_LENGTH = 32;
export const MAX_CLIENT_REQUEST_TOKEN_LENGTH = 64;

/**
 * The current value of a secret that rekey creates, until the first promote: an empty JSON object,
 * which contains no credential. Secrets Manager makes the first version of a secret AWSCURRENT
 * whatever labels the write requests, so without this placeholder the first pending value would
 * be readable as current before it was verified.
 */
export const PLACEHOLDER_SECRET_STRING = '{}';
export const CREATED_SECRET_DESCRIPTION = 'Created by rekey. Contains an empty JSON object until rekey promotes the first rotation.';
