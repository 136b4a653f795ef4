import type { Env } from '../src/contracts.js';
import { quoteError, RekeyError, type ErrorCode } from '../src/errors.js';
import type { SecretValue } from '../src/secret.js';

/** An AWS access key pair, as the SDK clients take it. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The settings every AWS client of rekey is built with, read once from the environment. */
export interface AwsSettings {
  region: string;
  /** Replaces the SDK's regional endpoint, for a VPC endpoint or a local emulator. */
  endpoint: string | undefined;
  /** rekey's admin identity. Undefined means the SDK's default credential chain. */
  credentials: AwsCredentials | undefined;
}

/** The part of an SDK client's configuration that rekey sets. */
export interface AwsClientConfig {
  region: string;
  endpoint?: string;
  credentials?: AwsCredentials;
  maxAttempts?: number;
}

function invalidSetting(message: string): RekeyError {
  return new RekeyError('INVALID_PARAMETERS', message);
}

/**
 * Reads rekey's AWS admin settings: REKEY_AWS_REGION (required), REKEY_AWS_ENDPOINT (optional)
 * and REKEY_AWS_ACCESS_KEY_ID with REKEY_AWS_SECRET_ACCESS_KEY and REKEY_AWS_SESSION_TOKEN
 * (optional). Without a key pair the SDK's default chain finds the credentials: environment,
 * shared files, web identity, container or instance role.
 */
export function readAwsSettings(env: Env): AwsSettings {
  const region = env.REKEY_AWS_REGION;
  if (region === undefined || region === '') {
    throw invalidSetting('REKEY_AWS_REGION is not set: set it to the AWS region of the IAM and Secrets Manager calls, for example us-east-1');
  }

  const endpoint = env.REKEY_AWS_ENDPOINT === '' ? undefined : env.REKEY_AWS_ENDPOINT;
  if (endpoint !== undefined && !URL.canParse(endpoint)) {
    throw invalidSetting(`REKEY_AWS_ENDPOINT="${endpoint}" is not a valid URL: expected a URL such as http://127.0.0.1:5055`);
  }

  const accessKeyId = env.REKEY_AWS_ACCESS_KEY_ID === '' ? undefined : env.REKEY_AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.REKEY_AWS_SECRET_ACCESS_KEY === '' ? undefined : env.REKEY_AWS_SECRET_ACCESS_KEY;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw invalidSetting('REKEY_AWS_ACCESS_KEY_ID and REKEY_AWS_SECRET_ACCESS_KEY must be set together, or both left unset to use the default credential chain');
  }

  let credentials: AwsCredentials | undefined;
  if (accessKeyId !== undefined && secretAccessKey !== undefined) {
    const sessionToken = env.REKEY_AWS_SESSION_TOKEN === '' ? undefined : env.REKEY_AWS_SESSION_TOKEN;
    credentials = sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
  }
  return { region, endpoint, credentials };
}

/**
 * Builds the configuration of an SDK client from `settings`, with its region and, when set, its
 * endpoint always given. `credentials` replaces the admin identity, for a client that signs with a
 * key under test.
 */
export function awsClientConfig(
  settings: AwsSettings,
  options: { credentials?: AwsCredentials; maxAttempts?: number } = {},
): AwsClientConfig {
  const config: AwsClientConfig = { region: settings.region };
  if (settings.endpoint !== undefined) config.endpoint = settings.endpoint;

  const credentials = options.credentials ?? settings.credentials;
  if (credentials !== undefined) config.credentials = credentials;
  if (options.maxAttempts !== undefined) config.maxAttempts = options.maxAttempts;
  return config;
}

/**
 * Returns the AWS error code of an SDK error (NoSuchEntity, InvalidClientTokenId), or undefined for
 * other values. Query-protocol services such as IAM name a modelled error's class after the code
 * with an "Exception" suffix (NoSuchEntityException) and keep the code itself in `Code`.
 */
export function awsErrorCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as Error & { Code?: unknown }).Code;
  return typeof code === 'string' ? code : error.name;
}

/**
 * Error codes of a rate limit: the throttling codes of the SDK's retry classification
 * (@smithy/core 3.x, service-error-classification), such as `SlowDown`, which S3 sends with
 * HTTP 503. It leaves out `LimitExceededException`, which Secrets Manager raises for a
 * quota that a retry cannot fix, and `TransactionInProgressException`, which IAM, STS and
 * Secrets Manager do not raise.
 */
const THROTTLING_ERRORS = new Set([
  'Throttling', 'ThrottlingException', 'ThrottledException', 'TooManyRequestsException', 'RequestLimitExceeded', 'RequestThrottled',
  'RequestThrottledException', 'SlowDown', 'BandwidthLimitExceeded', 'EC2ThrottledException', 'ProvisionedThroughputExceededException',
  'PriorRequestNotComplete',
]);

/** Errors that mean AWS rejected rekey's own identity or its permissions, which a retry cannot fix. */
const PERMISSION_ERRORS = new Set([
  'AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'UnrecognizedClientException', 'InvalidClientTokenId',
  'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'ExpiredTokenException', 'CredentialsProviderError',
]);

const NOT_FOUND_ERRORS = new Set(['NoSuchEntity', 'ResourceNotFoundException']);

const INVALID_PARAMETER_ERRORS = new Set([
  'ValidationError', 'ValidationException', 'InvalidInput', 'InvalidParameterException', 'InvalidParameterValue', 'MalformedPolicyDocument',
]);

/** Secrets Manager's error for a request that the secret's state rejects, such as a write to a secret scheduled for deletion. */
const STATE_ERRORS = new Set(['InvalidRequestException']);

const SERVER_ERRORS = new Set([
  'ServiceUnavailable', 'ServiceUnavailableException', 'ServiceFailure', 'InternalFailure', 'InternalServiceError', 'InternalServiceErrorException',
]);

/** Node.js socket error codes that mean the endpoint could not be reached. */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
]);

function errorCodeOf(error: unknown): ErrorCode {
  if (!(error instanceof Error)) return 'INTERNAL';
  const name = awsErrorCode(error) ?? error.name;
  // A modelled error with the retryable trait carries `$retryable: { throttling: true }`.
  const retryable = (error as Error & { $retryable?: { throttling?: boolean } }).$retryable;
  if (THROTTLING_ERRORS.has(name) || retryable?.throttling === true) return 'THROTTLED';
  if (PERMISSION_ERRORS.has(name)) return 'PERMISSION_DENIED';
  if (NOT_FOUND_ERRORS.has(name)) return 'TARGET_NOT_FOUND';
  if (INVALID_PARAMETER_ERRORS.has(name)) return 'INVALID_PARAMETERS';
  if (STATE_ERRORS.has(name)) return 'PRECONDITION_FAILED';
  if (name === 'TimeoutError' || name === 'AbortError') return 'TIMEOUT';

  const details = error as Error & { code?: unknown; $fault?: unknown; $metadata?: { httpStatusCode?: number } };
  if (typeof details.code === 'string' && NETWORK_ERROR_CODES.has(details.code)) return 'UNAVAILABLE';
  const status = details.$metadata?.httpStatusCode;
  if (SERVER_ERRORS.has(name) || details.$fault === 'server' || (status !== undefined && status >= 500)) return 'UNAVAILABLE';

  // A response the SDK could not parse (a proxy's HTML page, an emulator's XML error to a JSON
  // service) still has its HTTP status.
  if (status === 401 || status === 403) return 'PERMISSION_DENIED';
  if (status === 429) return 'THROTTLED';
  return 'INTERNAL';
}

/**
 * Converts the error of one AWS call into a RekeyError, whose code marks whether a retry can help.
 * `action` is the IAM action of the call (iam:ListAccessKeys) and `subject` the resource it acted
 * on, so that the message names the permission or resource an operator should check. `secrets` are
 * scrubbed from the quoted AWS text.
 */
export function toRekeyError(error: unknown, action: string, subject: string, secrets: readonly SecretValue[] = []): RekeyError {
  const code = errorCodeOf(error);
  const quoted = quoteError(error, secrets);
  if (code === 'PERMISSION_DENIED') {
    return new RekeyError(code, `${action} on ${subject} was denied: ${quoted}. Allow ${action} for rekey's AWS identity and check its credentials`, { cause: error });
  }
  return new RekeyError(code, `${action} on ${subject} failed: ${quoted}`, { cause: error });
}
