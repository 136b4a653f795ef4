import { quoteError, RekeyError } from '../errors.js';
import type { AuditEvent, AuditSink } from './types.js';
import { validateAuditEvent } from './validate.js';

/** Receives the transitions of an audit sink between writable and failing. */
export interface AuditHealthMonitor {
  /** Called on every failed append, with the driver's error quoted and the time of the first failure. */
  failing(reason: string, since: string): Promise<void> | void;
  /** Called on the first successful append after failures. */
  recovered(): Promise<void> | void;
}

/**
 * Wraps an audit sink so that rekey fails closed: an append the sink cannot write throws
 * AUDIT_UNAVAILABLE, which is retryable, and the monitor learns about it. The engine writes a
 * step's `started` record before the step changes anything, so no step starts while the trail
 * cannot record it. A malformed event is a bug, not an outage: its error passes through as is.
 */
export function guardAuditSink(sink: AuditSink, monitor: AuditHealthMonitor): AuditSink {
  let failingSince: string | null = null;

  async function report(action: () => Promise<void> | void): Promise<void> {
    // The monitor writes to Redis. Its own failure must not hide the audit sink's state.
    try {
      await action();
    } catch {
      return;
    }
  }

  return {
    async append(event: AuditEvent): Promise<void> {
      validateAuditEvent(event);
      try {
        await sink.append(event);
      } catch (error) {
        failingSince ??= new Date().toISOString();
        const reason = quoteError(error);
        await report(() => monitor.failing(reason, failingSince ?? ''));
        throw new RekeyError('AUDIT_UNAVAILABLE', `the audit trail cannot be written (${reason}); rekey starts no step until it can`, { cause: error });
      }
      if (failingSince !== null) {
        failingSince = null;
        await report(() => monitor.recovered());
      }
    },
    close: () => sink.close(),
  };
}
