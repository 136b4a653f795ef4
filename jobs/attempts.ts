/**
 * Attempts of rotation jobs running in this process, by rotation id.
 *
 * A worker whose event loop stalls past its lock (a long garbage collection, a blocked CPU) can
 * find its own job in the stalled check once it wakes, and start it again beside the attempt
 * that stalled. Fencing alone would make the older attempt fail the job, and BullMQ would then
 * stop renewing the lock of the newer one, because it tracks locks by job id. So the newer
 * attempt waits until the older one reaches a step boundary, saves its state and parks. The
 * older attempt returns only after the newer one has ended.
 */
export class ActiveAttempts {
  private readonly attempts = new Map<string, Attempt>();

  /** Registers a new attempt. An older attempt running here is asked to stop at its next boundary. */
  begin(rotationId: string): Attempt {
    const attempt = new Attempt();
    const older = this.attempts.get(rotationId);
    if (older !== undefined) {
      older.successor = attempt;
      attempt.predecessor = older;
    }
    this.attempts.set(rotationId, attempt);
    return attempt;
  }

  /** Ends an attempt and removes it, unless a newer one has taken its place. */
  end(rotationId: string, attempt: Attempt): void {
    attempt.markStopped();
    attempt.markFinished();
    if (this.attempts.get(rotationId) === attempt) this.attempts.delete(rotationId);
  }

  get size(): number {
    return this.attempts.size;
  }
}

export class Attempt {
  successor: Attempt | null = null;
  predecessor: Attempt | null = null;
  private readonly stoppedSignal = deferred();
  private readonly finishedSignal = deferred();

  /** Resolves once this attempt will change nothing more. */
  get stopped(): Promise<void> {
    return this.stoppedSignal.promise;
  }

  /** Resolves once this attempt's processor has returned or thrown. */
  get finished(): Promise<void> {
    return this.finishedSignal.promise;
  }

  markStopped(): void {
    this.stoppedSignal.resolve();
  }

  markFinished(): void {
    this.finishedSignal.resolve();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}
