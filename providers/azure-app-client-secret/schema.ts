export interface AzureAppClientSecretParams {
  /** The application (client) id of the Entra ID application whose secret rekey rotates. */
  appId: string;
  /** The application's tenant, when it differs from REKEY_AZURE_TENANT_ID. */
  tenantId?: string;
  /** The number of secrets the application may hold; rekey stops with KEY_QUOTA before minting past it. */
  maxSecrets?: number;
  /** Days until a minted secret expires. */
  secretLifetimeDays?: number;
}

const GUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/** A tenant is a GUID or a verified domain name such as contoso.onmicrosoft.com. */
export const AZURE_APP_CLIENT_SECRET_PARAMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['appId'],
  properties: {
    appId: { type: 'string', pattern: GUID_PATTERN },
    tenantId: { type: 'string', pattern: `${GUID_PATTERN}|^[a-zA-Z0-9.-]{3,253}$` },
    maxSecrets: { type: 'integer', minimum: 2, maximum: 1000 },
    secretLifetimeDays: { type: 'integer', minimum: 1, maximum: 3650 },
  },
} as const;
