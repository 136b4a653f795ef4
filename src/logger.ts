import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Paths pino censors wherever they appear in a log object. They are a second line of defence:
 * values travel as `SecretValue`, whose JSON form is already redacted.
 */
const REDACT_PATHS = [
  'password', '*.password', 'secret', '*.secret', 'secretAccessKey', '*.secretAccessKey', 'token', '*.token',
  'req.headers.authorization', 'headers.authorization', 'value', '*.value',
];

export function createLogger(options: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  const settings = {
    name: options.name ?? 'rekey',
    level: options.level ?? process.env.REKEY_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination);
}

/** Creates a logger that drops everything, for callers that were given none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Logger };
