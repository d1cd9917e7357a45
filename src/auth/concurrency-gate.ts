/** Raised by `ConcurrencyGate` when every slot is taken and the wait queue is full. */
export class GateFullError extends Error {
  constructor() {
    super('every slot is taken and the wait queue is full');
    this.name = 'GateFullError';
  }
}

/** What a gate is doing right now, and how many callers it turned away since it was made. */
export interface GateLoad {
  readonly inFlight: number;
  readonly queued: number;
  readonly refusedBusy: number;
}

interface Waiter {
  readonly admit: () => void;
}

/**
 * Lets at most `maxInFlight` tasks run at once; up to `maxQueued` more wait their turn in arrival
 * order, and a caller arriving with the queue full is refused at once, so a flood costs a bounded
 * amount of memory and never reaches what the gate protects. A waiter whose `signal` aborts
 * leaves the queue without running.
 */
export class ConcurrencyGate {
  private inFlight = 0;
  private refusedBusy = 0;
  /** FIFO; a queue holds at most `maxQueued` waiters, so removing one from the middle is cheap. */
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly maxInFlight: number,
    private readonly maxQueued: number,
  ) {}

  /**
   * Runs `task` once a slot is free. Rejects with `GateFullError` when the queue is full, or with
   * `signal.reason` when the signal aborts before a slot was given.
   */
  async run<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T> {
    await this.enter(signal);
    try {
      return await task();
    } finally {
      this.leave();
    }
  }

  get load(): GateLoad {
    return { inFlight: this.inFlight, queued: this.waiting.length, refusedBusy: this.refusedBusy };
  }

  private enter(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    // Behind others already waiting, a free slot is theirs first: arrival order is kept.
    if (this.inFlight < this.maxInFlight && this.waiting.length === 0) {
      this.inFlight++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxQueued) {
      this.refusedBusy++;
      return Promise.reject(new GateFullError());
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(abortReason(signal));
      };
      const waiter: Waiter = {
        admit: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private leave(): void {
    this.inFlight--;
    const next = this.waiting.shift();
    if (next) {
      this.inFlight++;
      next.admit();
    }
  }
}

/** The signal's own reason (a `TimeoutError` for `AbortSignal.timeout`), so callers can tell why. */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}
