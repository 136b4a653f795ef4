export const AZURE_KEY_VAULT_KIND = 'azure-key-vault';

/**
 * Suffix of the rekey-owned secret that contains pending versions. Consumers read `<name>`, whose
 * latest version is the current one, and Key Vault makes every new version the latest. So a
 * pending version cannot live in `<name>` itself, even disabled: reading a disabled latest
 * version fails with 403, which would break every consumer until promotion.
 */
export const PENDING_SUFFIX = '-rekey-pending';

/** Key Vault secret names: 1 to 127 letters, digits and dashes, so `<name>` leaves room for the suffix. */
export const MAX_SECRET_NAME_LENGTH = 127 - PENDING_SUFFIX.length;

/** Tags rekey writes on the versions it creates. Tag values hold ids, never values. */
export const ROTATION_TAG = 'rekey-rotation-id';
export const KEY_ID_TAG = 'rekey-key-id';
/** On a pending version: the consumer secret's latest version when it was staged ('' when none), checked at promote. */
export const BASE_VERSION_TAG = 'rekey-base-version';
/** On a promoted version: the version it replaced, which rekey disables once the grace has passed. */
export const PREVIOUS_VERSION_TAG = 'rekey-previous-version';

export const CONTENT_TYPE = 'application/json';

/** How long a replaced version stays enabled when a store target sets no `disablePreviousAfter`. */
export const DEFAULT_DISABLE_PREVIOUS_AFTER = '1h';
