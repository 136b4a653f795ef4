import type { PollPolicy } from '../../src/contracts.js';

export const VAULT_APPROLE_SECRET_ID_KIND = 'vault-approle-secret-id';

/** Mount of the AppRole auth method when a credential names none. */
export const DEFAULT_MOUNT = 'approle';

/**
 * A new secret ID works at once on a single Vault node, so verify needs a short window. On a
 * Vault Enterprise performance standby a login may briefly fail with 412 until the secret ID has
 * replicated, which verify reports as NOT_READY.
 */
export const VERIFY_POLICY: PollPolicy = { windowMs: 10_000, intervalMs: 500, consecutiveSuccesses: 1 };

/** Metadata attached to each secret ID that rekey creates, so that an operator can trace it in Vault. */
export const METADATA_RUN_ID = 'rekey_run_id';
export const METADATA_ROTATION_ID = 'rekey_rotation_id';
export const METADATA_CREDENTIAL_ID = 'rekey_credential_id';
