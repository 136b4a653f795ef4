export const VAULT_KV_KIND = 'vault-kv';

/** Mount of the KV version 2 engine when a target names none. Vault's dev server mounts one there. */
export const DEFAULT_KV_MOUNT = 'secret';

/**
 * Folder under the mount that contains pending versions, one key per rotation:
 * `<mount>/data/rekey-pending/<path>/<rotationId>`. Consumers read `<mount>/data/<path>`, so a
 * policy that lets them read their own paths never shows them a pending version.
 */
export const PENDING_PREFIX = 'rekey-pending';

/**
 * Custom metadata keys that rekey writes. Vault allows 64 keys of up to 128 bytes, with values of
 * up to 512 bytes (vault-plugin-secrets-kv, path_metadata.go).
 */
export const BASE_VERSION_KEY = 'rekey_base_version';
export const KEY_ID_KEY = 'rekey_key_id';
export const ROTATION_ID_KEY = 'rekey_rotation_id';
export const RUN_ID_KEY = 'rekey_run_id';
export const VERSION_KEY = 'rekey_version';

/** A pending entry never needs an older version: a new value for a rotation id is a conflict. */
export const PENDING_MAX_VERSIONS = 1;

/** Rotation ids become the last segment of a pending path, so they must be a valid path segment. */
export const ROTATION_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
