/** Entra ID's global authority host, the default of REKEY_AZURE_AUTHORITY_HOST. */
export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';

/** Microsoft Graph's global endpoint, the default of REKEY_AZURE_GRAPH_ENDPOINT. */
export const DEFAULT_GRAPH_ENDPOINT = 'https://graph.microsoft.com';

/**
 * Microsoft's own authority hosts (the values of `AzureAuthorityHosts` in @azure/identity 4.13,
 * plus the 21Vianet partner host). Any other host gets `disableInstanceDiscovery: true`, because
 * instance discovery would ask Microsoft's public endpoint whether that host is trusted.
 */
export const MICROSOFT_AUTHORITY_HOSTS: ReadonlySet<string> = new Set([
  'login.microsoftonline.com',
  'login.microsoftonline.us',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
  'login.microsoftonline.de',
]);

/**
 * Host suffixes of Microsoft's Key Vault endpoints (public, China, US Government and Germany
 * clouds). SecretClient checks that a challenge's resource matches them, and rekey lifts that
 * check only for other hosts.
 */
export const MICROSOFT_KEY_VAULT_SUFFIXES: readonly string[] = [
  '.vault.azure.net',
  '.vault.azure.cn',
  '.vault.usgovcloudapi.net',
  '.vault.microsoftazure.de',
];

/** The variables the AKS workload identity webhook sets in a pod, which WorkloadIdentityCredential reads. */
export const WORKLOAD_IDENTITY_VARIABLES = ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_FEDERATED_TOKEN_FILE'] as const;

/** Time limit of one Graph request, in milliseconds; REKEY_AZURE_REQUEST_TIMEOUT_MS overrides it. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * The longest Retry-After that a Graph call waits out by itself, and the total it may wait across
 * retries, in milliseconds. A longer wait fails the step with THROTTLED, and the job's own backoff
 * takes over. Graph's identity limits reset within 10 s to 5 min (Graph throttling limits page).
 */
export const MAX_RETRY_AFTER_MS = 60_000;
export const MAX_THROTTLE_WAIT_MS = 120_000;

/** The shortest wait after a 429, in milliseconds, so that Graph's throttling total stays bounded. */
export const MIN_RETRY_AFTER_MS = 1_000;

/** The wait when a 429 carries no usable Retry-After, in milliseconds. */
export const DEFAULT_RETRY_AFTER_MS = 5_000;

/** The largest Graph response rekey reads, in bytes; an application with many credentials stays far below it. */
export const MAX_GRAPH_RESPONSE_BYTES = 4 * 1024 * 1024;
