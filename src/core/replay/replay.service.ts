import { Inject, Injectable, Logger } from '@nestjs/common';
import { Clock } from '../clock';
import { BadRequestError, ReplayBusyError } from '../errors';
import { EventStats } from '../events/event-stats';
import type { Session } from '../session';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import { SubscriptionService, type SubscribeCommand } from '../subscriptions/subscription.service';
import { MAX_POSITION_LENGTH, parsePosition } from './log-position';
import { REPLAY_LOG, REPLAY_SETTINGS, type ReplayLog, type ReplaySettings } from './ports';
import { ReplayReads, type ReplayOutcome, type ReplayTicket } from './replay-reads';

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
 * reach it, and nobody else sees the replay. Resumes share reads of the log (`ReplayReads`): a
 * reconnect storm costs about one pass over the window, not one per client.
 */
@Injectable()
export class ReplayService {
  private readonly logger = new Logger(ReplayService.name);
  private readonly reads: ReplayReads;

  constructor(
    private readonly subscriptions: SubscriptionService,
    registry: SubscriptionRegistry,
    @Inject(REPLAY_LOG) private readonly log: ReplayLog,
    @Inject(REPLAY_SETTINGS) settings: ReplaySettings,
    private readonly stats: EventStats,
    clock: Clock,
  ) {
    this.reads = new ReplayReads(log, registry, settings, stats, clock);
  }

  /** Reads of the log running now, and resumes waiting for one. */
  get load(): { active: number; waiting: number } {
    return this.reads.load;
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
    if (!hold.begin()) {
      this.stats.replaysRefused++;
      throw new ReplayBusyError('a resume is already under way on this connection');
    }
    let lastReplayed: string | undefined;
    try {
      const ticket = this.admit(position);
      let subscribed: string[];
      try {
        subscribed = await this.subscriptions.subscribe(session, command);
      } catch (error) {
        if (ticket) this.reads.cancel(ticket);
        throw error;
      }
      const { recovered, last } = await this.replay(session, position, ticket);
      lastReplayed = last;
      if (recovered) this.stats.replays.recovered++;
      else this.stats.replays.notRecovered++;
      return { subscribed, recovered };
    } finally {
      hold.release(lastReplayed);
    }
  }

  /**
   * A place in a read of the log for a position worth reading from, decided before anything is
   * subscribed: a refused resume (`replay_busy`) has subscribed nothing.
   */
  private admit(position: string): ReplayTicket | undefined {
    const from = parsePosition(position);
    if (!from || from.epoch !== this.log.epoch()) return undefined;
    try {
      return this.reads.admit(from.offset + 1);
    } catch (error) {
      if (error instanceof ReplayBusyError) this.stats.replaysRefused++;
      throw error;
    }
  }

  /**
   * Replays what followed `position`; `last` is the position the client has everything up to,
   * so live events at or before it are not sent again. Decided once subscribed, so that live
   * events that reached the node while it subscribed are read from the log.
   */
  private async replay(
    session: Session,
    position: string,
    ticket: ReplayTicket | undefined,
  ): Promise<{ recovered: boolean; last?: string }> {
    const from = parsePosition(position);
    const epoch = this.log.epoch();
    if (!ticket || !from || epoch === undefined || from.epoch !== epoch) {
      if (ticket) this.reads.cancel(ticket);
      return { recovered: false };
    }
    const head = this.log.liveHead();
    // Nothing after the position has reached this node live (the client may come from a node
    // that read further): nothing was missed, and live events up to it are not sent again.
    if (head !== undefined && from.offset >= head) {
      this.reads.cancel(ticket);
      return { recovered: true, last: position };
    }
    const outcome: ReplayOutcome = await this.reads.replay(ticket, {
      session,
      position,
      next: from.offset + 1,
    });
    if (!outcome.recovered)
      this.logger.debug(`session's position ${from.offset} is past the window`);
    return outcome;
  }
}
