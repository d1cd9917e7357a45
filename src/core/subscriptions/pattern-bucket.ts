import type { Session, SessionGroup, Subscription } from '../session';

/** How a bucket's subscriptions are sent one event: per broadcasting group, or one by one. */
export interface DispatchPlan {
  /** Sessions of each broadcasting transport; the same arrays until the bucket changes. */
  readonly grouped: ReadonlyMap<SessionGroup, readonly Session[]>;
  /** Subscriptions whose sessions are sent events one at a time. */
  readonly direct: readonly Subscription[];
}

/**
 * The subscriptions of one family and account that share a topic pattern: an event's key is
 * matched against the pattern once for all of them (a thousand dashboards on
 * `call.CHANNEL_CREATE.*` cost one match, found through `TopicTrie`), and how to send them an
 * event is worked out once per change of membership rather than once per event.
 */
export class PatternBucket {
  private readonly members = new Set<Subscription>();
  /** Subscriptions per session: two bindings can share a pattern (raw and encoded ids). */
  private readonly perSession = new Map<Session, number>();
  private ordered: Subscription[] | undefined;
  private plan: DispatchPlan | undefined;

  constructor(readonly pattern: string) {}

  get size(): number {
    return this.members.size;
  }

  /** True when no session holds two of the bucket's subscriptions. */
  get oneSubscriptionPerSession(): boolean {
    return this.perSession.size === this.members.size;
  }

  /** In the order they were made. */
  get subscriptions(): readonly Subscription[] {
    return (this.ordered ??= [...this.members]);
  }

  add(subscription: Subscription): void {
    this.members.add(subscription);
    this.perSession.set(subscription.session, (this.perSession.get(subscription.session) ?? 0) + 1);
    this.changed();
  }

  delete(subscription: Subscription): void {
    if (!this.members.delete(subscription)) return;
    const left = (this.perSession.get(subscription.session) ?? 1) - 1;
    if (left === 0) this.perSession.delete(subscription.session);
    else this.perSession.set(subscription.session, left);
    this.changed();
  }

  dispatchPlan(): DispatchPlan {
    if (this.plan) return this.plan;
    const grouped = new Map<SessionGroup, Session[]>();
    const direct: Subscription[] = [];
    for (const subscription of this.subscriptions) {
      const group = subscription.session.group;
      if (!group) {
        direct.push(subscription);
        continue;
      }
      const sessions = grouped.get(group);
      if (sessions) sessions.push(subscription.session);
      else grouped.set(group, [subscription.session]);
    }
    return (this.plan = { grouped, direct });
  }

  private changed(): void {
    this.ordered = undefined;
    this.plan = undefined;
  }
}
