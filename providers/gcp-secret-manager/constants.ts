export const GCP_SECRET_MANAGER_KIND = 'gcp-secret-manager';

/**
 * Suffix of the secret that contains a pending value. A version added to the target secret would
 * become `latest` at once, and `latest` always resolves to the newest version whatever its state,
 * so a disabled new version would break consumers instead of hiding. The pending value therefore
 * lives in a separate secret until promote copies it into the target secret.
 */
export const PENDING_SECRET_SUFFIX = '-rekey-pending';

/**
 * Annotations rekey keeps on its secrets. Keys are 1 to 63 characters of letters, digits, dashes,
 * underscores and dots (Secret Manager API, Secret.annotations).
 */
export const ROTATION_ID_ANNOTATION = 'rekey-rotation-id';
export const KEY_ID_ANNOTATION = 'rekey-key-id';
/** The number of the target secret's version that contains the promoted value. */
export const VERSION_ANNOTATION = 'rekey-version';
/** Set on the target secret while a promote adds its version: the rotation, and the newest version before it. */
export const PROMOTING_ANNOTATION = 'rekey-promoting';
export const PROMOTING_AFTER_ANNOTATION = 'rekey-promoting-after';

/** The label that marks a pending-value secret, so that operators can find and exclude them. */
export const PENDING_LABEL = 'rekey-pending';
