import { performance } from 'node:perf_hooks';
import { Clock } from '../clock';
import { ReplayBusyError } from '../errors';
import { isKazooMessage, outboundEvent } from '../events/event-ingress';
import { EventStats } from '../events/event-stats';
import { ALL_ACCOUNTS, type FamilyEvent, type KazooMessage } from '../families/event-family';
import type { EventMatch, Session, Subscription } from '../session';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import { topicWordsMatch } from '../topics/topic-matcher';
import type { LogEntry, ReplayLog, ReplaySettings } from './ports';

/**
 * Passes in a row that get nothing before a read short of the live head gives up (each waits
 * for the log's quiet moment): a loaded broker can be silent for one or two.
 */
const MAX_QUIET_PASSES = 10;

/**
 * How long a read short of the live head may go without getting anything before it gives up,
 * whatever the passes: a log that itself waits long for a busy broker (the stream waits 30 s)
 * would otherwise hold a resume for ten such waits before telling the client to resynchronise.
 */
export const MAX_STALL_MS = 30_000;

/** Least time between two reads started while resumes keep arriving (a reconnect storm). */
const GATHER_MS = 50;

/** A resuming session, as a read of the log serves it. */
export interface ReplayRequest {
  readonly session: Session;
  /** The position the client presented: what it has everything up to. */
  readonly position: string;
  /** The first offset it wants (the one after its position). */
  readonly next: number;
}

export interface ReplayOutcome {
  /** False when the entry after the position is gone or older than the window. */
  readonly recovered: boolean;
  /** The position the client now has everything up to (live events at or before it are not sent). */
  readonly last: string;
}

/** A subscription with its pattern already split into words. */
interface Wanted {
  readonly subscription: Subscription;
  readonly words: readonly string[];
}

/** A resuming session inside a read. */
interface Member extends ReplayRequest {
  readonly subscriptions: readonly Subscription[];
  /** Account (or `*`) → the member's subscriptions of it. */
  readonly byAccount: ReadonlyMap<string, readonly Wanted[]>;
  /** True once the read has reached the member's first wanted offset and found it. */
  started: boolean;
  resolve(outcome: ReplayOutcome): void;
  reject(error: unknown): void;
}

/** One pass over the log, serving every member that joined it. */
class LogRead {
  /** Offset of the last entry visited: a member wanting a later one may still join. */
  cursor: number;
  /** Position of the last entry visited. */
  lastPosition: string | undefined;
  /** False once the read will visit nothing more. */
  open = true;
  windowStart: number | undefined;
  readonly members = new Set<Member>();
  /** Members not yet at their first wanted offset, the farthest first (the nearest pops). */
  readonly fresh: Member[] = [];
  /** Account (or `*`) → started members holding a subscription of it. */
  readonly started = new Map<string, Set<Member>>();

  constructor(
    readonly from: number,
    /** The registry's removals when last checked: a change means a member may be gone. */
    public removalsSeen: number,
  ) {
    this.cursor = from - 1;
  }
}

/** What `admit` promised a resume, until it joins a read, waits, or gives up (`cancel`). */
export class ReplayTicket {
  settled = false;

  constructor(readonly plan: 'join' | 'start' | 'wait') {}
}

/**
 * Coalesced reads of the replay log. The log is one stream with every account's events, so a
 * read serves every resuming session it can: a resume joins a running read that has not yet
 * gone past the offset it wants, else it waits; when a read ends, every waiting resume starts
 * one new read together from the smallest offset they want. A reconnect storm then costs about
 * one pass over the window per `concurrency` reads, not one per client.
 *
 * Each entry is described once per family reader, then matched against the members' own
 * subscriptions only, with the registry's rules (family, account or `*`, topic pattern, still
 * subscribed): a member never sees another account's events.
 */
export class ReplayReads {
  private readonly reads = new Set<LogRead>();
  private readonly waiting: Member[] = [];
  /** Slots promised to resumes still subscribing, which will start a read. */
  private reserved = 0;
  /** Resumes still subscribing that will wait: counted against `maxWaiting`. */
  private arriving = 0;
  private startScheduled = false;
  private lastStartAt = -Infinity;
  private readonly descriptions = new WeakMap<LogEntry, (FamilyEvent | undefined)[]>();

  constructor(
    private readonly log: ReplayLog,
    private readonly registry: SubscriptionRegistry,
    private readonly settings: ReplaySettings,
    private readonly stats: EventStats,
    private readonly clock: Clock,
  ) {}

  /** Reads running now, and resumes waiting for one. */
  get load(): { active: number; waiting: number } {
    return { active: this.reads.size, waiting: this.waiting.length + this.arriving };
  }

  /**
   * Takes a resume that wants `next` on: it will join a read, start one or wait. Throws
   * `ReplayBusyError` when it would wait and `maxWaiting` resumes wait already. Decided on
   * arrival, before the resume subscribes, so a refused resume has subscribed nothing.
   */
  admit(next: number): ReplayTicket {
    let plan: ReplayTicket['plan'];
    if (this.joinable(next)) plan = 'join';
    else if (this.reads.size + this.reserved < this.settings.concurrency) plan = 'start';
    else if (this.waiting.length + this.arriving >= this.settings.maxWaiting) {
      throw new ReplayBusyError('too many resumes waiting on this node; retry later');
    } else plan = 'wait';
    if (plan === 'start') this.reserved++;
    if (plan === 'wait') this.arriving++;
    this.countLoad();
    return new ReplayTicket(plan);
  }

  /** The resume goes no further (its subscribe failed, or it has nothing to read). */
  cancel(ticket: ReplayTicket): void {
    this.settle(ticket);
    this.scheduleStart();
    this.countLoad();
  }

  private settle(ticket: ReplayTicket): void {
    if (ticket.settled) return;
    ticket.settled = true;
    if (ticket.plan === 'start') this.reserved--;
    if (ticket.plan === 'wait') this.arriving--;
  }

  /**
   * Replays what followed `request.position` into the session's hold, from the log, with the
   * session's subscriptions as they are now; resolves once the member is done.
   */
  replay(ticket: ReplayTicket, request: ReplayRequest): Promise<ReplayOutcome> {
    const subscriptions = this.registry.of(request.session);
    return new Promise<ReplayOutcome>((resolve, reject) => {
      const member: Member = {
        ...request,
        subscriptions,
        byAccount: byAccount(subscriptions),
        started: false,
        resolve,
        reject,
      };
      this.settle(ticket);
      if (!this.present(member)) {
        // Gone while it subscribed: nothing to read for it.
        resolve({ recovered: true, last: request.position });
      } else {
        const read = this.joinable(member.next);
        if (read) this.join(read, member);
        // No read can serve it (one may have gone past its offset since it arrived): it waits,
        // and starts a read with every other waiting resume if a slot is free.
        else this.waiting.push(member);
      }
      this.scheduleStart();
      this.countLoad();
    });
  }

  /** The running read that will reach `next` soonest without having passed it. */
  private joinable(next: number): LogRead | undefined {
    let best: LogRead | undefined;
    for (const read of this.reads) {
      if (!read.open || read.cursor >= next) continue;
      if (!best || read.cursor > best.cursor) best = read;
    }
    return best;
  }

  private join(read: LogRead, member: Member): void {
    read.members.add(member);
    const { fresh } = read;
    // Kept sorted, the farthest first: each entry pops the members it is the first one for.
    let index = fresh.length;
    while (index > 0 && fresh[index - 1].next < member.next) index--;
    fresh.splice(index, 0, member);
  }

  /**
   * Waiting resumes start a read on the next turn of the event loop, not now: a burst of
   * resumes arriving together then shares one read instead of taking every slot one each.
   */
  private scheduleStart(): void {
    if (this.startScheduled) return;
    this.startScheduled = true;
    const start = (): void => {
      this.startScheduled = false;
      this.startWaiting();
    };
    // Within `GATHER_MS` of the last read started (a storm), the next one waits out the rest:
    // reads from memory end in milliseconds, and started at once they would each serve the
    // one or two resumes that arrived meanwhile. A lone resume starts at once.
    const wait = this.lastStartAt + GATHER_MS - performance.now();
    if (wait > 0) setTimeout(start, wait);
    else setImmediate(start);
  }

  /** Every waiting resume starts one read together, while slots are free. */
  private startWaiting(): void {
    while (this.waiting.length > 0 && this.reads.size + this.reserved < this.settings.concurrency) {
      const members: Member[] = [];
      for (const member of this.waiting.splice(0)) {
        // Gone while it waited: nothing to read for it.
        if (this.present(member)) members.push(member);
        else member.resolve({ recovered: true, last: member.position });
      }
      if (members.length === 0) break;
      // The farthest first, as `join` keeps them (one sort, not a thousand inserts).
      members.sort((a, b) => b.next - a.next);
      this.lastStartAt = performance.now();
      const read = new LogRead(members[members.length - 1].next, this.registry.removals);
      this.reads.add(read);
      this.stats.replayReads++;
      for (const member of members) {
        read.members.add(member);
        read.fresh.push(member);
      }
      void this.run(read);
    }
    this.countLoad();
  }

  private async run(read: LogRead): Promise<void> {
    try {
      // The window probe waits on the same broker: its time counts toward the stall bound.
      let progressAt = this.clock.now().getTime();
      // Once per read: a resume joining later is held to the window as it was when the read
      // began, a few seconds more lenient at most, and every entry it gets is still in the log.
      read.windowStart = await this.log.firstOffsetSince(
        new Date(progressAt - this.settings.windowMs),
      );
      let from = read.from;
      let quietPasses = 0;
      let short = false;
      while (read.open && read.members.size > 0) {
        const got = await this.log.read(from, (entry) => this.visit(read, entry));
        // Entries the log could not read still count as read: nothing more is coming of them.
        if (read.open && got !== undefined && got > read.cursor) read.cursor = got;
        const liveHead = this.log.liveHead();
        if (!read.open || liveHead === undefined || read.cursor >= liveHead) break;
        // The log went quiet before the read reached what live delivery has handed over: a
        // broker or an event loop busy with a storm looks just like that, and what is between
        // is in the log, so the read goes on from where it stopped. Passes that get nothing
        // again and again mean the log cannot give it (retention took it meanwhile, say).
        const now = this.clock.now().getTime();
        if (read.cursor >= from) progressAt = now;
        quietPasses = read.cursor < from ? quietPasses + 1 : 0;
        if (quietPasses >= MAX_QUIET_PASSES || now - progressAt >= MAX_STALL_MS) {
          short = true;
          break;
        }
        from = read.cursor + 1;
      }
      read.open = false;
      // Everyone left has all there was, unless the read stopped short of the live head: then
      // events may be missing, and the clients must resynchronise.
      for (const member of read.members) this.end(read, member, !short);
    } catch (error: unknown) {
      read.open = false;
      for (const member of read.members) {
        read.members.delete(member);
        member.reject(error);
      }
    } finally {
      this.reads.delete(read);
      this.scheduleStart();
      this.countLoad();
    }
  }

  /** One entry for every member of the read; false when the read is over. */
  private visit(read: LogRead, entry: LogEntry): boolean {
    if (!read.open) return false;
    if (this.registry.removals !== read.removalsSeen) {
      read.removalsSeen = this.registry.removals;
      // A client left (or dropped every binding) meanwhile: nothing more is read for it.
      for (const member of read.members) if (!this.present(member)) this.end(read, member, true);
    }
    if (read.members.size === 0) return this.close(read);
    this.stats.replayReadEntries++;
    read.cursor = entry.offset;
    const { fresh } = read;
    while (fresh.length > 0 && fresh[fresh.length - 1].next <= entry.offset) {
      const member = fresh.pop()!;
      // The entry after the position is gone (retention), or older than the window.
      if (
        entry.offset > member.next ||
        read.windowStart === undefined ||
        entry.offset < read.windowStart
      ) {
        this.end(read, member, false);
        continue;
      }
      member.started = true;
      for (const account of member.byAccount.keys()) {
        let members = read.started.get(account);
        if (!members) read.started.set(account, (members = new Set()));
        members.add(member);
      }
    }
    this.deliver(read, entry);
    read.lastPosition = entry.position;
    const liveHead = this.log.liveHead();
    // Live delivery has handed this entry over already: the held events take it from here.
    if (liveHead !== undefined && entry.offset >= liveHead) {
      for (const member of read.members) this.end(read, member, true);
      return this.close(read);
    }
    return read.members.size > 0 || this.close(read);
  }

  private close(read: LogRead): false {
    read.open = false;
    return false;
  }

  /** Sends the entry's matches to each started member, in its subscription order. */
  private deliver(read: LogRead, entry: LogEntry): void {
    if (read.started.size === 0 || !isKazooMessage(entry.message)) return;
    let matchesOf: Map<Member, EventMatch[]> | undefined;
    for (let index = 0; index < entry.readers.length; index++) {
      const reader = entry.readers[index];
      const described = this.describedOf(entry, entry.message, index);
      const accountId = described?.accountId;
      if (!described || !accountId) continue;
      // Most entries are of accounts nobody in the read resumes: skipped before any allocation.
      if (!read.started.has(accountId) && !read.started.has(ALL_ACCOUNTS)) continue;
      const accounts = accountId === ALL_ACCOUNTS ? [accountId] : [accountId, ALL_ACCOUNTS];
      const event = outboundEvent(
        reader.family,
        accountId,
        described,
        entry.delivery,
        entry.position,
      );
      const keyWords = event.key.split('.');
      for (const account of accounts) {
        for (const member of read.started.get(account) ?? []) {
          for (const { subscription, words } of member.byAccount.get(account) ?? []) {
            if (subscription.family !== reader.family) continue;
            if (!topicWordsMatch(words, keyWords)) continue;
            // Unsubscribed while the replay ran: no longer delivered.
            if (!this.registry.contains(subscription)) continue;
            matchesOf ??= new Map();
            let matches = matchesOf.get(member);
            if (!matches) matchesOf.set(member, (matches = []));
            matches.push({ subscription, event });
          }
        }
      }
    }
    if (!matchesOf) return;
    for (const [member, matches] of matchesOf) {
      matches.sort((a, b) => a.subscription.order - b.subscription.order);
      member.session.liveHold?.replay(matches);
      this.stats.replayedEvents++;
    }
  }

  /**
   * The reader's description of the entry, made once per entry: entries from the node's memory
   * are the same objects for every read, so a storm describes each one once, not once per read.
   */
  private describedOf(
    entry: LogEntry,
    message: KazooMessage,
    index: number,
  ): FamilyEvent | undefined {
    let described = this.descriptions.get(entry);
    if (!described) {
      described = entry.readers.map((reader) => reader.describe(message, entry.delivery));
      this.descriptions.set(entry, described);
    }
    return described[index];
  }

  /** The member's session still holds one of the subscriptions it resumed with. */
  private present(member: Member): boolean {
    return member.subscriptions.some((subscription) => this.registry.contains(subscription));
  }

  /**
   * The member is done: with everything up to the last entry the read visited once it had
   * started, else up to its own position.
   */
  private end(read: LogRead, member: Member, recovered: boolean): void {
    if (!read.members.delete(member)) return;
    const fresh = read.fresh.indexOf(member);
    if (fresh >= 0) read.fresh.splice(fresh, 1);
    for (const account of member.byAccount.keys()) {
      const members = read.started.get(account);
      members?.delete(member);
      if (members?.size === 0) read.started.delete(account);
    }
    const last =
      recovered && member.started && read.lastPosition !== undefined
        ? read.lastPosition
        : member.position;
    member.resolve({ recovered, last });
  }

  private countLoad(): void {
    this.stats.replaysReading = this.reads.size;
    this.stats.replaysWaiting = this.waiting.length + this.arriving;
  }
}

/** Subscriptions by account, patterns split once for the whole read. */
function byAccount(subscriptions: readonly Subscription[]): Map<string, Wanted[]> {
  const grouped = new Map<string, Wanted[]>();
  for (const subscription of subscriptions) {
    let wanted = grouped.get(subscription.accountId);
    if (!wanted) grouped.set(subscription.accountId, (wanted = []));
    wanted.push({ subscription, words: subscription.binding.pattern.split('.') });
  }
  return grouped;
}
