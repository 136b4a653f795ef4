import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import {
  parseGitGuardianEvent,
  parseGithubSecretScanningEvent,
  parseTruffleHogFindings,
  type GithubSecretScanningAlertEvent,
} from '../../src/webhooks/payloads.js';

/** The secret value planted in the fixtures; it must never show in an error message or a serialised result. */
const CANARY = 'rekey-canary-7f3a91c2e5';

function fixtureText(name: string): string {
  return readFileSync(new URL(`../fixtures/webhooks/${name}`, import.meta.url), 'utf8');
}

function fixture(name: string): Record<string, unknown> {
  return JSON.parse(fixtureText(name)) as Record<string, unknown>;
}

/** Runs `parse` and returns the RekeyError it throws, failing the test if it throws nothing or something else. */
function captureError(parse: () => unknown): RekeyError {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(RekeyError);
    return error as RekeyError;
  }
  throw new Error('expected the parser to throw');
}

function parseAlertEvent(body: unknown): GithubSecretScanningAlertEvent {
  const event = parseGithubSecretScanningEvent('secret_scanning_alert', body);
  if (event.event !== 'secret_scanning_alert') throw new Error(`expected an alert event, got ${event.event}`);
  return event;
}

function expectInvalid(parse: () => unknown, message: string): void {
  const error = captureError(parse);
  expect(error.code).toBe('INVALID_PARAMETERS');
  expect(error.status).toBe(400);
  expect(error.message).toBe(message);
  expect(error.message).not.toContain(CANARY);
}

describe('parseGithubSecretScanningEvent', () => {
  it('reads a created alert', () => {
    const event = parseGithubSecretScanningEvent('secret_scanning_alert', fixture('github-secret-scanning-alert-created.json'));
    expect(event).toEqual({
      event: 'secret_scanning_alert',
      action: 'created',
      alertNumber: 42,
      owner: 'acme-corp',
      repo: 'payments-api',
      secretType: 'aws_access_key_id',
      secretTypeDisplayName: 'Amazon AWS Access Key ID',
      validity: 'active',
      createdAt: '2024-05-01T12:00:00Z',
      htmlUrl: 'https://github.com/acme-corp/payments-api/security/secret-scanning/42',
      secret: null,
    });
  });

  it('wraps a secret the payload carries', () => {
    const body = fixture('github-secret-scanning-alert-created.json');
    (body.alert as Record<string, unknown>).secret = CANARY;

    const event = parseAlertEvent(body);
    expect(event.secret).toBeInstanceOf(SecretValue);
    expect(event.secret?.reveal()).toBe(CANARY);
    expect(JSON.stringify(event)).not.toContain(CANARY);
    expect(JSON.stringify(event)).toContain('"secret":"[redacted]"');
  });

  it('reads a missing validity as unknown', () => {
    const body = fixture('github-secret-scanning-alert-created.json');
    delete (body.alert as Record<string, unknown>).validity;
    expect(parseAlertEvent(body).validity).toBe('unknown');
  });

  it('reads an unlisted validity as unknown', () => {
    const body = fixture('github-secret-scanning-alert-created.json');
    (body.alert as Record<string, unknown>).validity = 'revoked_by_provider';
    expect(parseAlertEvent(body).validity).toBe('unknown');
  });

  it('reads a ping', () => {
    expect(parseGithubSecretScanningEvent('ping', fixture('github-ping.json'))).toEqual({
      event: 'ping',
      hookId: 481522917,
      zen: 'Design for failure.',
    });
  });

  describe('when the delivery is invalid', () => {
    function alertBody(change: (body: Record<string, unknown>, alert: Record<string, unknown>) => void): Record<string, unknown> {
      const body = fixture('github-secret-scanning-alert-created.json');
      const alert = body.alert as Record<string, unknown>;
      alert.secret = CANARY;
      change(body, alert);
      return body;
    }

    const cases: Array<{ name: string; body: () => unknown; message: string }> = [
      { name: 'array body', body: () => [], message: 'GitHub secret_scanning_alert payload: expected a JSON object, got an array' },
      { name: 'missing action', body: () => alertBody((body) => delete body.action), message: 'GitHub secret_scanning_alert payload: action is missing' },
      { name: 'missing alert', body: () => alertBody((body) => delete body.alert), message: 'GitHub secret_scanning_alert payload: alert is missing' },
      { name: 'missing alert number', body: () => alertBody((_, alert) => delete alert.number), message: 'GitHub secret_scanning_alert payload: alert.number is missing' },
      { name: 'string alert number', body: () => alertBody((_, alert) => { alert.number = '42'; }), message: 'GitHub secret_scanning_alert payload: alert.number must be an integer, got a string' },
      { name: 'zero alert number', body: () => alertBody((_, alert) => { alert.number = 0; }), message: 'GitHub secret_scanning_alert payload: alert.number must be at least 1' },
      { name: 'empty secret type', body: () => alertBody((_, alert) => { alert.secret_type = ''; }), message: 'GitHub secret_scanning_alert payload: alert.secret_type must not be empty' },
      { name: 'invalid created_at', body: () => alertBody((_, alert) => { alert.created_at = 'yesterday'; }), message: 'GitHub secret_scanning_alert payload: alert.created_at must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z' },
      { name: 'missing owner login', body: () => alertBody((body) => delete ((body.repository as Record<string, unknown>).owner as Record<string, unknown>).login), message: 'GitHub secret_scanning_alert payload: repository.owner.login is missing' },
      { name: 'missing repository', body: () => alertBody((body) => delete body.repository), message: 'GitHub secret_scanning_alert payload: repository is missing' },
      { name: 'secret as an object', body: () => alertBody((_, alert) => { alert.secret = { value: CANARY }; }), message: 'GitHub secret_scanning_alert payload: alert.secret must be a string, got an object' },
    ];

    for (const testCase of cases) {
      it(`names the field for ${testCase.name}`, () => {
        expectInvalid(() => parseGithubSecretScanningEvent('secret_scanning_alert', testCase.body()), testCase.message);
      });
    }

    it('rejects a ping without hook_id', () => {
      expectInvalid(() => parseGithubSecretScanningEvent('ping', { zen: 'Keep it logically awesome.' }), 'GitHub ping payload: hook_id is missing');
    });

    it('rejects an unsupported event', () => {
      expectInvalid(
        () => parseGithubSecretScanningEvent('push', fixture('github-ping.json')),
        'GitHub webhook: unsupported X-GitHub-Event "push": subscribe the webhook to secret_scanning_alert only',
      );
    });

    it('truncates a long event name', () => {
      const error = captureError(() => parseGithubSecretScanningEvent('x'.repeat(500), {}));
      expect(error.message).toContain(`"${'x'.repeat(64)}"`);
      expect(error.message).not.toContain('x'.repeat(65));
    });
  });
});

describe('parseGitGuardianEvent', () => {
  it('reads an incident_triggered event', () => {
    expect(parseGitGuardianEvent(fixture('gitguardian-incident-triggered.json'))).toEqual({
      kind: 'incident',
      action: 'incident_triggered',
      occurredAt: '2024-05-01T12:00:03.512644Z',
      incidentId: 8213944,
      incidentDate: '2024-05-01T12:00:01.204113Z',
      detector: { name: 'aws_iam', displayName: 'AWS Keys', groupName: 'aws_iam' },
      validity: 'valid',
      status: 'triggered',
      severity: 'critical',
      secretRevoked: false,
      secretHash: 'Ri9FjVgdOlPnBmujoxP4XPJcbe82BhJXB/SAngijw/juCISuOMgPzYhV28m6OG24',
      hmslHash: '05975add34ddc9a38a0fb57c7d3e676ffed57080516fc16bf8d8f14308fedb86',
      gitguardianUrl: 'https://dashboard.gitguardian.com/workspace/20517/incidents/8213944',
      occurrence: null,
      secrets: [],
    });
  });

  it('reads the occurrence of a new_occurrence event', () => {
    const event = parseGitGuardianEvent(fixture('gitguardian-new-occurrence.json'));
    if (event.kind !== 'incident') throw new Error('expected an incident event');
    expect(event.action).toBe('new_occurrence');
    expect(event.status).toBe('assigned');
    expect(event.occurrence).toEqual({
      id: 40771203,
      url: 'https://github.com/acme-corp/payments-api/commit/3f786850e387550fdab836ed7e6dc881de23001b#diff-4a1f',
      filepath: 'deploy/settings.env',
      sha: '3f786850e387550fdab836ed7e6dc881de23001b',
      sourceUrl: 'https://github.com/acme-corp/payments-api',
    });
    expect(event.secrets).toEqual([]);
  });

  it('wraps the matches of the test message', () => {
    const event = parseGitGuardianEvent(fixture('gitguardian-test-message.json'));
    if (event.kind !== 'test') throw new Error('expected the test message');
    expect(event.detectorName).toBe('Welcome Message Token');
    expect(event.gitguardianUrl).toBe('https://dashboard.gitguardian.com/workspace/20517/incidents/8213');
    expect(event.secrets.map((secret) => secret.reveal())).toEqual(['rekey-test-client-id-0001', CANARY]);
    expect(event.secrets.every((secret) => secret instanceof SecretValue)).toBe(true);
    expect(JSON.stringify(event)).not.toContain(CANARY);
  });

  describe('when the payload is invalid', () => {
    function incidentBody(change: (body: Record<string, unknown>, incident: Record<string, unknown>) => void): Record<string, unknown> {
      const body = fixture('gitguardian-incident-triggered.json');
      change(body, body.incident as Record<string, unknown>);
      return body;
    }

    function testMessage(change: (body: Record<string, unknown>, matches: Array<Record<string, unknown>>) => void): Record<string, unknown> {
      const body = fixture('gitguardian-test-message.json');
      change(body, body.matches as Array<Record<string, unknown>>);
      return body;
    }

    const cases: Array<{ name: string; body: () => unknown; message: string }> = [
      { name: 'string body', body: () => 'incident_triggered', message: 'GitGuardian webhook payload: expected a JSON object, got a string' },
      { name: 'empty object', body: () => ({}), message: 'GitGuardian webhook payload: action is missing' },
      { name: 'numeric action', body: () => incidentBody((body) => { body.action = 1; }), message: 'GitGuardian webhook payload: action must be a string, got a number' },
      { name: 'missing incident', body: () => incidentBody((body) => delete body.incident), message: 'GitGuardian webhook payload: incident is missing' },
      { name: 'missing incident id', body: () => incidentBody((_, incident) => delete incident.id), message: 'GitGuardian webhook payload: incident.id is missing' },
      { name: 'fractional incident id', body: () => incidentBody((_, incident) => { incident.id = 1.5; }), message: 'GitGuardian webhook payload: incident.id must be an integer, got a number' },
      { name: 'missing detector name', body: () => incidentBody((_, incident) => delete (incident.detector as Record<string, unknown>).name), message: 'GitGuardian webhook payload: incident.detector.name is missing' },
      { name: 'invalid timestamp', body: () => incidentBody((body) => { body.timestamp = '2024-05-01 12:00:03'; }), message: 'GitGuardian webhook payload: timestamp must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z' },
      { name: 'string secret_revoked', body: () => incidentBody((_, incident) => { incident.secret_revoked = 'false'; }), message: 'GitGuardian webhook payload: incident.secret_revoked must be a boolean, got a string' },
      { name: 'test message without type', body: () => testMessage((body) => delete body.type), message: 'GitGuardian webhook payload: type is missing' },
      { name: 'test message match as a number', body: () => testMessage((_, matches) => { matches[0]!.match = 7; }), message: 'GitGuardian webhook payload: matches[0].match must be a string, got a number' },
      { name: 'test message with a string match entry', body: () => testMessage((_, matches) => { matches.push(CANARY as unknown as Record<string, unknown>); }), message: 'GitGuardian webhook payload: matches[2] must be an object, got a string' },
    ];

    for (const testCase of cases) {
      it(`names the field for ${testCase.name}`, () => {
        expectInvalid(() => parseGitGuardianEvent(testCase.body()), testCase.message);
      });
    }
  });
});

describe('parseTruffleHogFindings', () => {
  const awsFinding = {
    detectorName: 'AWS',
    detectorType: 2,
    verified: true,
    sourceName: 'trufflehog - git',
    redacted: 'AKIAIOSFODNN7EXAMPLE',
  };

  it('reads NDJSON and skips blank lines', () => {
    const findings = parseTruffleHogFindings(fixtureText('trufflehog-findings.ndjson'));
    expect(findings).toHaveLength(2);

    const [aws, github] = findings;
    expect(aws).toMatchObject(awsFinding);
    expect(aws?.raw?.reveal()).toBe('AKIAIOSFODNN7EXAMPLE');
    expect(aws?.rawV2?.reveal()).toBe(`AKIAIOSFODNN7EXAMPLE:${CANARY}`);

    expect(github).toMatchObject({ detectorName: 'Github', detectorType: 8, verified: false, sourceName: 'trufflehog - git', redacted: '' });
    expect(github?.raw?.reveal()).toBe(CANARY);
    expect(github?.rawV2).toBeNull();
  });

  it('keeps secrets out of the serialised findings', () => {
    const text = fixtureText('trufflehog-findings.ndjson');
    expect(text).toContain(CANARY);
    const serialised = JSON.stringify(parseTruffleHogFindings(text));
    expect(serialised).not.toContain(CANARY);
    expect(serialised).not.toContain('ExtraData');
    expect(serialised).not.toContain('arn:aws:iam');
  });

  it('reads CRLF line endings', () => {
    const text = fixtureText('trufflehog-findings.ndjson').split('\n').join('\r\n');
    expect(parseTruffleHogFindings(text).map((finding) => finding.detectorName)).toEqual(['AWS', 'Github']);
  });

  it('reads one JSON object', () => {
    const [line] = fixtureText('trufflehog-findings.ndjson').split('\n');
    const findings = parseTruffleHogFindings(JSON.stringify(JSON.parse(line ?? ''), null, 2));
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject(awsFinding);
  });

  it('reads a JSON array', () => {
    const objects = fixtureText('trufflehog-findings.ndjson').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as unknown);
    const findings = parseTruffleHogFindings(JSON.stringify(objects));
    expect(findings.map((finding) => finding.detectorName)).toEqual(['AWS', 'Github']);
  });

  it('returns no findings for empty input', () => {
    expect(parseTruffleHogFindings('')).toEqual([]);
    expect(parseTruffleHogFindings(' \n\n')).toEqual([]);
  });

  it('defaults optional fields', () => {
    const [finding] = parseTruffleHogFindings('{"DetectorName":"Slack","DetectorType":13,"Verified":false}');
    expect(finding).toEqual({ detectorName: 'Slack', detectorType: 13, verified: false, raw: null, rawV2: null, sourceName: '', redacted: '' });
  });

  describe('when a finding is invalid', () => {
    const validLine = `{"DetectorName":"Github","DetectorType":8,"Verified":true,"Raw":"${CANARY}"}`;

    it('names the line that is not JSON without quoting it', () => {
      const text = `${validLine}\n\n{"DetectorName":"AWS","Raw":"${CANARY}",`;
      expectInvalid(() => parseTruffleHogFindings(text), 'TruffleHog findings: line 3 is not valid JSON');
    });

    it('keeps the JSON syntax error out of the error', () => {
      const error = captureError(() => parseTruffleHogFindings(`${validLine}\n{"Raw": ${CANARY}}`));
      expect(error.cause).toBeUndefined();
      expect(String(error.stack)).not.toContain(CANARY);
    });

    const cases: Array<{ name: string; text: string; message: string }> = [
      { name: 'missing DetectorName', text: `${validLine}\n{"DetectorType":2,"Verified":true,"Raw":"${CANARY}"}`, message: 'TruffleHog finding on line 2: DetectorName is missing' },
      { name: 'string DetectorType', text: `{"DetectorName":"AWS","DetectorType":"AWS","Verified":true,"Raw":"${CANARY}"}\n${validLine}`, message: 'TruffleHog finding on line 1: DetectorType must be an integer, got a string' },
      { name: 'negative DetectorType', text: `{"DetectorName":"AWS","DetectorType":-1,"Verified":true}`, message: 'TruffleHog finding: DetectorType must be at least 0' },
      { name: 'string Verified', text: `${validLine}\n{"DetectorName":"AWS","DetectorType":2,"Verified":"true"}\n`, message: 'TruffleHog finding on line 2: Verified must be a boolean, got a string' },
      { name: 'numeric Raw', text: `{"DetectorName":"AWS","DetectorType":2,"Verified":true,"Raw":12345}`, message: 'TruffleHog finding: Raw must be a string, got a number' },
      { name: 'array element that is not an object', text: `[${validLine}, "${CANARY}"]`, message: 'TruffleHog finding [1]: expected a JSON object, got a string' },
      { name: 'array element without Verified', text: `[{"DetectorName":"AWS","DetectorType":2,"Raw":"${CANARY}"}]`, message: 'TruffleHog finding [0]: Verified is missing' },
      { name: 'TruffleHog log line', text: '{"level":"info-0","ts":"2024-05-01T12:00:00Z","logger":"trufflehog","msg":"running source"}', message: 'TruffleHog finding: DetectorName is missing' },
      { name: 'JSON number', text: '42', message: 'TruffleHog finding: expected a JSON object, got a number' },
    ];

    for (const testCase of cases) {
      it(`names the field for ${testCase.name}`, () => {
        expectInvalid(() => parseTruffleHogFindings(testCase.text), testCase.message);
      });
    }
  });
});
