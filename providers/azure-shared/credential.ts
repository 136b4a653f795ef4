import {
  ClientSecretCredential,
  DefaultAzureCredential,
  WorkloadIdentityCredential,
  type TokenCredential,
  type TokenCredentialOptions,
} from '@azure/identity';
import type { SecretValue } from '../../src/secret.js';
import type { AzureSettings } from './settings.js';

/** The options every rekey credential shares: the authority, instance discovery and the CA. */
export interface IdentityOptions extends TokenCredentialOptions {
  authorityHost: string;
  disableInstanceDiscovery: boolean;
}

/**
 * Builds the pipeline options of an Azure client: the CA list goes to the pipeline's TLS policy,
 * so a private or test endpoint is trusted without NODE_EXTRA_CA_CERTS (Node reads that variable
 * only at start-up).
 */
export function pipelineOptions(settings: Pick<AzureSettings, 'ca'>): Pick<TokenCredentialOptions, 'tlsOptions'> {
  return settings.ca === undefined ? {} : { tlsOptions: { ca: settings.ca } };
}

export function identityOptions(settings: Pick<AzureSettings, 'authorityHost' | 'disableInstanceDiscovery' | 'ca'>): IdentityOptions {
  return {
    authorityHost: settings.authorityHost,
    disableInstanceDiscovery: settings.disableInstanceDiscovery,
    ...pipelineOptions(settings),
  };
}

/** Creates rekey's own credential, as its settings choose. */
export function createAdminCredential(settings: AzureSettings): TokenCredential {
  const options = identityOptions(settings);
  const credential = settings.credential;
  switch (credential.kind) {
    case 'client-secret':
      return new ClientSecretCredential(credential.tenantId, credential.clientId, credential.secret.reveal(), options);
    case 'workload-identity':
      return new WorkloadIdentityCredential({ ...options, tenantId: credential.tenantId, clientId: credential.clientId, tokenFilePath: credential.tokenFilePath });
    case 'default':
      return new DefaultAzureCredential({
        ...options,
        ...(credential.tenantId === undefined ? {} : { tenantId: credential.tenantId }),
        ...(credential.clientId === undefined ? {} : { managedIdentityClientId: credential.clientId, workloadIdentityClientId: credential.clientId }),
      });
  }
}

/**
 * Creates a credential that signs in as `clientId` with `secret`, to prove a new client secret.
 * Each call creates a fresh credential, so that no token cached by an earlier attempt is reused.
 */
export function createSecretCredential(settings: AzureSettings, tenantId: string, clientId: string, secret: SecretValue): ClientSecretCredential {
  return new ClientSecretCredential(tenantId, clientId, secret.reveal(), identityOptions(settings));
}
