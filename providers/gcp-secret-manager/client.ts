import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { SecretValue } from '../../src/secret.js';
import { googleApiErrorOf, toRekeyError, type GcpAuth } from '../gcp-shared/index.js';

/** A secret's metadata as rekey reads it. */
export interface SecretInfo {
  annotations: Record<string, string>;
}

/** A version's number and state (ENABLED, DISABLED or DESTROYED). */
export interface VersionInfo {
  number: number;
  state: string;
}

function versionNumberOf(name: string | null | undefined): number {
  const number = Number(name?.split('/versions/')[1]);
  return Number.isInteger(number) ? number : 0;
}

function isNotFound(error: unknown): boolean {
  return googleApiErrorOf(error)?.status === 'NOT_FOUND';
}

/**
 * The Secret Manager calls of the store, through @google-cloud/secret-manager over REST (`fallback`)
 * with rekey's admin client. Each method converts errors into RekeyErrors that name the
 * permission and the secret.
 */
export class SecretManagerApi {
  readonly #auth: GcpAuth;
  #client: SecretManagerServiceClient | undefined;

  constructor(auth: GcpAuth) {
    this.#auth = auth;
  }

  async #connect(): Promise<SecretManagerServiceClient> {
    if (this.#client === undefined) {
      this.#client = new SecretManagerServiceClient(await this.#auth.gapicOptions(this.#auth.settings.secretManagerEndpoint));
      this.#auth.track(this.#client);
    }
    return this.#client;
  }

  /** Returns the secret's annotations, or null when it does not exist. */
  async getSecret(project: string, secret: string): Promise<SecretInfo | null> {
    const client = await this.#connect();
    try {
      const [found] = await client.getSecret({ name: `projects/${project}/secrets/${secret}` });
      return { annotations: { ...(found.annotations ?? {}) } };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw toRekeyError(error, 'secretmanager.secrets.get', `secret ${secret} of project ${project}`);
    }
  }

  /** Creates a secret with automatic replication. Returns false when it exists already. */
  async createSecret(project: string, secret: string, labels: Record<string, string>, annotations: Record<string, string>): Promise<boolean> {
    const client = await this.#connect();
    try {
      await client.createSecret({ parent: `projects/${project}`, secretId: secret, secret: { replication: { automatic: {} }, labels, annotations } });
      return true;
    } catch (error) {
      if (googleApiErrorOf(error)?.status === 'ALREADY_EXISTS') return false;
      throw toRekeyError(error, 'secretmanager.secrets.create', `secret ${secret} of project ${project}`);
    }
  }

  /** Replaces the secret's annotations. */
  async setAnnotations(project: string, secret: string, annotations: Record<string, string>): Promise<void> {
    const client = await this.#connect();
    try {
      await client.updateSecret({ secret: { name: `projects/${project}/secrets/${secret}`, annotations }, updateMask: { paths: ['annotations'] } });
    } catch (error) {
      throw toRekeyError(error, 'secretmanager.secrets.update', `secret ${secret} of project ${project}`);
    }
  }

  /** Lists the secret's versions, newest first. */
  async listVersions(project: string, secret: string): Promise<VersionInfo[]> {
    const client = await this.#connect();
    try {
      const [versions] = await client.listSecretVersions({ parent: `projects/${project}/secrets/${secret}` });
      return versions
        .map((version) => ({ number: versionNumberOf(version.name), state: String(version.state ?? 'STATE_UNSPECIFIED') }))
        .sort((a, b) => b.number - a.number);
    } catch (error) {
      if (isNotFound(error)) return [];
      throw toRekeyError(error, 'secretmanager.versions.list', `secret ${secret} of project ${project}`);
    }
  }

  /** Adds a version holding `value` and returns its number. */
  async addVersion(project: string, secret: string, value: SecretValue): Promise<number> {
    const client = await this.#connect();
    try {
      const [version] = await client.addSecretVersion({ parent: `projects/${project}/secrets/${secret}`, payload: { data: Buffer.from(value.reveal(), 'utf8') } });
      return versionNumberOf(version.name);
    } catch (error) {
      throw toRekeyError(error, 'secretmanager.versions.add', `secret ${secret} of project ${project}`, [value]);
    }
  }

  /** Reads a version's value, or returns null when it does not exist or is not enabled. */
  async access(project: string, secret: string, version: number | 'latest'): Promise<SecretValue | null> {
    const client = await this.#connect();
    try {
      const [accessed] = await client.accessSecretVersion({ name: `projects/${project}/secrets/${secret}/versions/${version}` });
      const data = accessed.payload?.data;
      if (data === null || data === undefined) return null;
      return SecretValue.fromString(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
    } catch (error) {
      const status = googleApiErrorOf(error)?.status;
      if (status === 'NOT_FOUND' || status === 'FAILED_PRECONDITION') return null;
      throw toRekeyError(error, 'secretmanager.versions.access', `version ${version} of secret ${secret} of project ${project}`);
    }
  }

  /** Disables a version. A version that is already disabled, destroyed or gone counts as done. */
  async disable(project: string, secret: string, version: number): Promise<void> {
    await this.#changeState(project, secret, version, 'disable');
  }

  /** Destroys a version's value for good. A version already destroyed or gone counts as done. */
  async destroy(project: string, secret: string, version: number): Promise<void> {
    await this.#changeState(project, secret, version, 'destroy');
  }

  async #changeState(project: string, secret: string, version: number, action: 'disable' | 'destroy'): Promise<void> {
    const client = await this.#connect();
    const name = `projects/${project}/secrets/${secret}/versions/${version}`;
    try {
      if (action === 'disable') await client.disableSecretVersion({ name });
      else await client.destroySecretVersion({ name });
    } catch (error) {
      const status = googleApiErrorOf(error)?.status;
      if (status === 'NOT_FOUND' || status === 'FAILED_PRECONDITION') return;
      throw toRekeyError(error, `secretmanager.versions.${action}`, `version ${version} of secret ${secret} of project ${project}`);
    }
  }
}
