import { ReplayBusyError } from '../errors';

/**
 * The node's replay slots: at most `concurrency` replays read the log at once, the next ones
 * wait in arrival order, and past `maxWaiting` waiters a resume is refused. A reconnect storm
 * then costs the broker and the event loop a fixed number of readers, not one per client.
 */
export class ReplaySlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxWaiting: number,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves once a slot is held; `release` must follow. Throws `ReplayBusyError` when full. */
  async acquire(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return;
    }
    if (this.waiting.length >= this.maxWaiting) {
      throw new ReplayBusyError('too many resumes waiting on this node; retry later');
    }
    // The slot is handed over by `release`, so `running` does not change here.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
