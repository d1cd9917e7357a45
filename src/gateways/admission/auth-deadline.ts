import { Inject, Injectable, OnApplicationShutdown, Optional } from '@nestjs/common';
import { Environment } from '../../config/environment';

/** Injection token for the deadlines' time source; unit tests move time by hand. */
export const DEADLINE_CLOCK = Symbol('DEADLINE_CLOCK');

/** A connection's pending deadline; `clear` once it has subscribed, or when it closes. */
export class DeadlineWatch {
  constructor(
    readonly expiresAt: number,
    readonly onExpire: () => void,
    private readonly owner: Set<DeadlineWatch>,
  ) {}

  clear(): void {
    this.owner.delete(this);
  }
}

/**
 * `AUTH_DEADLINE_S`: a connection that has not subscribed successfully by then is closed, so
 * idle unauthenticated sockets cannot pile up. One unref'd sweep serves every connection: all
 * deadlines have the same length, so insertion order is expiry order and a sweep stops at the
 * first watch still pending, whatever the number of connections.
 */
@Injectable()
export class AuthDeadlines implements OnApplicationShutdown {
  private readonly pending = new Set<DeadlineWatch>();
  private readonly deadlineMs: number;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    env: Environment,
    @Optional() @Inject(DEADLINE_CLOCK) private readonly now: () => number = Date.now,
  ) {
    this.deadlineMs = env.AUTH_DEADLINE_S * 1000;
  }

  /** Starts a connection's deadline; `onExpire` closes it with the transport's own code. */
  watch(onExpire: () => void): DeadlineWatch {
    const watch = new DeadlineWatch(this.now() + this.deadlineMs, onExpire, this.pending);
    this.pending.add(watch);
    if (!this.sweeper) {
      // A quarter of the deadline, at most a second: a connection outlives it by that at most.
      this.sweeper = setInterval(() => this.sweep(), Math.min(1000, this.deadlineMs / 4));
      this.sweeper.unref();
    }
    return watch;
  }

  get size(): number {
    return this.pending.size;
  }

  sweep(): void {
    const now = this.now();
    for (const watch of this.pending) {
      if (watch.expiresAt > now) break;
      this.pending.delete(watch);
      watch.onExpire();
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweeper);
    this.pending.clear();
  }
}
