import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';

/**
 * PostgreSQL for the integration suites, started by scripts/test-services.sh on loopback. Its
 * pg_hba.conf trusts every local login, so a login there proves nothing about a password.
 */
export const POSTGRES_ADMIN_URL = process.env.REKEY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const POSTGRES_HOST = '127.0.0.1';
export const POSTGRES_PORT = 5432;

/**
 * The group role whose members must log in with a password. `ensurePasswordLogin` adds pg_hba.conf
 * rules for it above the trust rules; other roles, and superusers that are not explicitly members,
 * keep logging in as before.
 */
export const PASSWORD_LOGIN_GROUP = 'rekey_test_password_login';

const HBA_MARKER = `# rekey integration tests: members of ${PASSWORD_LOGIN_GROUP} log in with SCRAM-SHA-256`;
const HBA_RULES = [
  `host all +${PASSWORD_LOGIN_GROUP} 127.0.0.1/32 scram-sha-256`,
  `host all +${PASSWORD_LOGIN_GROUP} ::1/128 scram-sha-256`,
];
/** Serializes test processes that may edit pg_hba.conf at the same time (an arbitrary constant). */
const HBA_LOCK_ID = 727_401;
const RELOAD_TIMEOUT_MS = 10_000;

export async function withAdmin<T>(work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/**
 * Makes the local server check passwords for members of PASSWORD_LOGIN_GROUP: creates the group,
 * puts SCRAM rules for it at the top of pg_hba.conf, reloads the configuration and waits until a
 * wrong password is rejected. Safe to run again and from parallel test files; it never removes or
 * changes an existing rule. The test process must be able to write pg_hba.conf (it runs as root
 * or as the postgres user on the CI machine).
 */
export async function ensurePasswordLogin(): Promise<void> {
  await withAdmin(async (admin) => {
    await admin.query('SELECT pg_advisory_lock($1)', [HBA_LOCK_ID]);
    try {
      await createGroupRole(admin);
      const hbaFile = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]?.hba_file;
      if (hbaFile === undefined) throw new Error('PostgreSQL did not return its hba_file setting');
      if (addRules(hbaFile)) {
        await assertRulesParse(admin);
        await admin.query('SELECT pg_reload_conf()');
      }
    } finally {
      await admin.query('SELECT pg_advisory_unlock($1)', [HBA_LOCK_ID]);
    }
  });
  await waitUntilPasswordsAreChecked();
}

async function createGroupRole(admin: pg.Client): Promise<void> {
  const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [PASSWORD_LOGIN_GROUP]);
  if (exists.rowCount !== 0) return;

  // NOLOGIN keeps the group from ever logging in; its random password, which is not stored anywhere, lets
  // waitUntilPasswordsAreChecked tell a password check (28P01) from a trust rule (28000).
  const password = randomBytes(24).toString('base64url');
  await admin.query(`CREATE ROLE ${pg.escapeIdentifier(PASSWORD_LOGIN_GROUP)} NOLOGIN PASSWORD ${pg.escapeLiteral(password)}`);
}

/** Inserts the rules before the first rule in the file; returns false if they are already there. */
function addRules(hbaFile: string): boolean {
  let text: string;
  try {
    text = readFileSync(hbaFile, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${hbaFile} to add the password rules for the tests (${String(error)}); add these lines above the trust rules by hand and reload PostgreSQL:\n${HBA_RULES.join('\n')}`, { cause: error });
  }
  const lines = text.split('\n');
  if (HBA_RULES.every((rule) => lines.includes(rule))) return false;

  const firstRule = lines.findIndex((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
  const at = firstRule === -1 ? lines.length : firstRule;
  lines.splice(at, 0, HBA_MARKER, ...HBA_RULES.filter((rule) => !lines.includes(rule)));
  try {
    // Written in place, so that the file keeps its owner and mode.
    writeFileSync(hbaFile, lines.join('\n'));
  } catch (error) {
    throw new Error(`cannot write ${hbaFile} (${String(error)}); add these lines above the trust rules by hand and reload PostgreSQL:\n${HBA_RULES.join('\n')}`, { cause: error });
  }
  return true;
}

async function assertRulesParse(admin: pg.Client): Promise<void> {
  const errors = await admin.query<{ line_number: number; error: string }>(
    'SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL',
  );
  if (errors.rowCount !== 0) {
    throw new Error(`pg_hba.conf has errors after adding the test rules: ${JSON.stringify(errors.rows)}`);
  }
}

/** Waits until the server has loaded the rules: a wrong password for the group role fails as a password. */
async function waitUntilPasswordsAreChecked(): Promise<void> {
  const deadline = Date.now() + RELOAD_TIMEOUT_MS;
  for (;;) {
    const outcome = await tryLogin(PASSWORD_LOGIN_GROUP, 'not-the-password');
    if (outcome === '28P01') return;
    if (Date.now() > deadline) {
      throw new Error(`PostgreSQL still returns ${outcome} instead of 28P01 (invalid password) for ${PASSWORD_LOGIN_GROUP} after reloading pg_hba.conf`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Tries to log in as `role` over TCP. Returns 'ok' on success, else the SQLSTATE of the error
 * ('28P01' for a wrong password).
 */
export async function tryLogin(role: string, password: string): Promise<string> {
  const client = new pg.Client({ host: POSTGRES_HOST, port: POSTGRES_PORT, database: 'postgres', user: role, password });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return 'ok';
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Returns a role name that no other test uses. */
export function uniqueRoleName(): string {
  return `rekey_t_${randomBytes(6).toString('hex')}`;
}

/**
 * Creates a login role with `password`, hashed by the server itself. With `checked` it joins
 * PASSWORD_LOGIN_GROUP, so that logins as the role must present the password.
 */
export async function createRole(role: string, password: string, options: { checked?: boolean; login?: boolean } = {}): Promise<void> {
  const checked = options.checked ?? true;
  const login = options.login ?? true;
  await withAdmin(async (admin) => {
    const membership = checked ? ` IN ROLE ${pg.escapeIdentifier(PASSWORD_LOGIN_GROUP)}` : '';
    await admin.query(`CREATE ROLE ${pg.escapeIdentifier(role)} ${login ? 'LOGIN' : 'NOLOGIN'} PASSWORD ${pg.escapeLiteral(password)}${membership}`);
  });
}

export async function dropRole(role: string): Promise<void> {
  await withAdmin(async (admin) => {
    await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
  });
}

/** Returns the role's stored password (pg_authid.rolpassword); undefined if the role does not exist. */
export async function storedPassword(role: string): Promise<string | null | undefined> {
  return withAdmin(async (admin) => {
    const result = await admin.query<{ rolpassword: string | null }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
    return result.rows[0]?.rolpassword;
  });
}
