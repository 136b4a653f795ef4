export const GENERATED_SECRET_KIND = 'generated-secret';

/** 32 random bytes: 256 bits, the strength of an AES-256 key. */
export const DEFAULT_SECRET_BYTES = 32;
