import { Inject, Injectable, Logger } from '@nestjs/common';
import { Clock } from '../clock';
import { BadRequestError, ReplayBusyError } from '../errors';
import { isKazooMessage, outboundEvent } from '../events/event-ingress';
import { EventStats } from '../events/event-stats';
import { ALL_ACCOUNTS } from '../families/event-family';
import type { EventMatch, Session, Subscription } from '../session';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import { SubscriptionService, type SubscribeCommand } from '../subscriptions/subscription.service';
import { topicWordsMatch } from '../topics/topic-matcher';
import { MAX_POSITION_LENGTH, parsePosition } from './log-position';
import {
  REPLAY_LOG,
  REPLAY_SETTINGS,
  type LogEntry,
  type ReplayLog,
  type ReplaySettings,
} from './ports';
import { ReplaySlots } from './replay-slots';

export interface ResumeCommand extends SubscribeCommand {
  /** The last position the client saw, as it got it. */
  readonly position: unknown;
}

export interface ResumeResult {
  /** Every binding the session now holds, as `subscribe` answers. */
  readonly subscribed: string[];
  /**
   * True when every event after the position that these bindings would have delivered was
   * replayed; false when the position is older than the window or of another log, and the
   * client must resynchronise (the bindings are subscribed live all the same).
   */
  readonly recovered: boolean;
}

/**
 * Resume after a reconnect (Centrifugo's recovery, on one log shared by the fleet): subscribe
 * the bindings, replay every event after the client's position that they would have delivered,
 * then continue live with no gap and no duplicate at the seam.
 *
 * The seam: the session's live events are held from before it subscribes; the replay reads the
 * log from the position until it reaches what live delivery has handed over (or the log has
 * nothing more); held events past the last replayed position then follow. Live delivery reads
 * the same log, so every live event has a position to compare.
 *
 * The replay matches entries against the resuming session's own subscriptions only, with the
 * registry's rules (family, account or `*`, topic pattern): another account's events cannot
 * reach it, and nobody else sees the replay.
 */
@Injectable()
export class ReplayService {
  private readonly logger = new Logger(ReplayService.name);
  private readonly slots: ReplaySlots;

  constructor(
    private readonly subscriptions: SubscriptionService,
    private readonly registry: SubscriptionRegistry,
    @Inject(REPLAY_LOG) private readonly log: ReplayLog,
    @Inject(REPLAY_SETTINGS) private readonly settings: ReplaySettings,
    private readonly stats: EventStats,
    private readonly clock: Clock,
  ) {
    this.slots = new ReplaySlots(settings.concurrency, settings.maxWaiting);
  }

  /** Replays reading now, and resumes waiting for a slot. */
  get load(): { active: number; waiting: number } {
    return { active: this.slots.active, waiting: this.slots.queued };
  }

  async resume(session: Session, command: ResumeCommand): Promise<ResumeResult> {
    const { position } = command;
    if (typeof position !== 'string' || position.length > MAX_POSITION_LENGTH) {
      throw new BadRequestError(
        `position must be a string of at most ${MAX_POSITION_LENGTH} characters`,
      );
    }
    const hold = session.liveHold;
    if (!this.log.enabled || !hold) {
      // No log to read: the bindings are subscribed, and the client told to resynchronise.
      const subscribed = await this.subscriptions.subscribe(session, command);
      this.stats.replays.notRecovered++;
      return { subscribed, recovered: false };
    }
    try {
      const slot = this.slots.acquire();
      this.countLoad();
      await slot;
    } catch (error) {
      if (error instanceof ReplayBusyError) this.stats.replaysRefused++;
      throw error;
    } finally {
      this.countLoad();
    }
    try {
      if (!hold.begin()) {
        this.stats.replaysRefused++;
        throw new ReplayBusyError('a resume is already under way on this connection');
      }
      let lastReplayed: string | undefined;
      try {
        const subscribed = await this.subscriptions.subscribe(session, command);
        const { recovered, last } = await this.replay(session, position);
        lastReplayed = last;
        if (recovered) this.stats.replays.recovered++;
        else this.stats.replays.notRecovered++;
        return { subscribed, recovered };
      } finally {
        hold.release(lastReplayed);
      }
    } finally {
      this.slots.release();
      this.countLoad();
    }
  }

  private countLoad(): void {
    this.stats.replaysReading = this.slots.active;
    this.stats.replaysWaiting = this.slots.queued;
  }

  /**
   * Replays what followed `position`; `last` is the position the client has everything up to,
   * so live events at or before it are not sent again.
   */
  private async replay(
    session: Session,
    position: string,
  ): Promise<{ recovered: boolean; last?: string }> {
    const from = parsePosition(position);
    const epoch = this.log.epoch();
    if (!from || epoch === undefined || from.epoch !== epoch) return { recovered: false };
    const head = this.log.liveHead();
    // Nothing after the position has reached this node live (the client may come from a node
    // that read further): nothing was missed, and live events up to it are not sent again.
    if (head !== undefined && from.offset >= head) return { recovered: true, last: position };
    const windowStart = await this.log.firstOffsetSince(
      new Date(this.clock.now().getTime() - this.settings.windowMs),
    );
    const next = from.offset + 1;
    const subscriptions = this.registry.of(session);
    let recovered = true;
    let first = true;
    let last = position;
    await this.log.read(next, (entry) => {
      // The client left (or dropped every binding) meanwhile: its slot goes to someone else.
      if (!subscriptions.some((subscription) => this.registry.contains(subscription))) {
        return false;
      }
      this.stats.replayReadEntries++;
      if (first) {
        first = false;
        // The entry after the position is gone (retention), or older than the window.
        if (entry.offset > next || windowStart === undefined || entry.offset < windowStart) {
          recovered = false;
          return false;
        }
      }
      const matches = this.matchesOf(subscriptions, entry);
      if (matches.length > 0) {
        session.liveHold?.replay(matches);
        this.stats.replayedEvents++;
      }
      last = entry.position;
      const liveHead = this.log.liveHead();
      // Live delivery has handed this entry over already: the held events take it from here.
      return liveHead === undefined || entry.offset < liveHead;
    });
    if (!recovered) this.logger.debug(`session's position ${from.offset} is past the window`);
    return { recovered, last };
  }

  /** The session's subscriptions an entry matches, in subscription order, as live delivery. */
  private matchesOf(subscriptions: readonly Subscription[], entry: LogEntry): EventMatch[] {
    const matches: EventMatch[] = [];
    if (!isKazooMessage(entry.message)) return matches;
    for (const reader of entry.readers) {
      const described = reader.describe(entry.message, entry.delivery);
      const accountId = described?.accountId;
      if (!described || !accountId) continue;
      const event = outboundEvent(
        reader.family,
        accountId,
        described,
        entry.delivery,
        entry.position,
      );
      const keyWords = event.key.split('.');
      for (const subscription of subscriptions) {
        if (subscription.family !== reader.family) continue;
        if (subscription.accountId !== accountId && subscription.accountId !== ALL_ACCOUNTS) {
          continue;
        }
        if (!topicWordsMatch(subscription.binding.pattern.split('.'), keyWords)) continue;
        // Unsubscribed while the replay ran: no longer delivered.
        if (!this.registry.contains(subscription)) continue;
        matches.push({ subscription, event });
      }
    }
    return matches.sort((a, b) => a.subscription.order - b.subscription.order);
  }
}
