export const FILE_STORE_KIND = 'file';

/** Environment variables that configure the store, with their defaults (relative to the working directory). */
export const STORE_FILE_ENV = 'REKEY_FILE_STORE';
export const DEFAULT_STORE_FILE = '.rekey/secrets.enc';
export const MASTER_KEY_ENV = 'REKEY_MASTER_KEY';
export const MASTER_KEY_FILE_ENV = 'REKEY_MASTER_KEY_FILE';
export const DEFAULT_MASTER_KEY_FILE = '.rekey/master.key';

/** Name and version written in every store file, so that a later format can be recognised. */
export const FORMAT_NAME = 'rekey-file-store';
export const FORMAT_VERSION = 1;

/** AES-256-GCM with a 32-byte key, a 12-byte IV (fresh for every write) and a 16-byte authentication tag. */
export const CIPHER = 'aes-256-gcm';
export const MASTER_KEY_BYTES = 32;
export const IV_BYTES = 12;
export const AUTH_TAG_BYTES = 16;

/** Mode of the store file, the key file and the temporary files they are written through. */
export const FILE_MODE = 0o600;
export const DIRECTORY_MODE = 0o700;
