import { Clock } from '../clock';
import { BadRequestError, ReplayBusyError } from '../errors';
import { EventStats } from '../events/event-stats';
import type { ExchangeReader, KazooMessage } from '../families/event-family';
import type { EventMatch, Session } from '../session';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import type { SubscriptionService } from '../subscriptions/subscription.service';
import { LiveHold } from './live-hold';
import { formatPosition } from './log-position';
import type { LogEntry, ReplayLog } from './ports';
import { ReplayService } from './replay.service';

const EPOCH = 'abcdef0123456789';

/** A family that reads `{Account, Name}` messages as `<name>` keys. */
const reader: ExchangeReader = {
  family: 'call',
  describe: (message: KazooMessage) => ({
    accountId: message.Account as string,
    key: message.Name as string,
    name: message.Name as string,
    payload: message,
  }),
};

class FakeLog implements ReplayLog {
  enabled = true;
  head: number | undefined;
  windowStart: number | undefined = 0;
  readonly entries: LogEntry[] = [];
  /** Called after each entry read: lets a test deliver live events meanwhile. */
  onRead: (offset: number) => void = () => undefined;

  append(account: string, name: string): LogEntry {
    const offset = this.entries.length;
    const entry: LogEntry = {
      offset,
      position: formatPosition(EPOCH, offset),
      readers: [reader],
      message: { Account: account, Name: name },
      delivery: { exchange: 'callevt', routingKey: name },
    };
    this.entries.push(entry);
    return entry;
  }
  epoch(): string {
    return EPOCH;
  }
  liveHead(): number | undefined {
    return this.head;
  }
  firstOffsetSince(): Promise<number | undefined> {
    return Promise.resolve(this.windowStart);
  }
  read(from: number, visit: (entry: LogEntry) => boolean): Promise<void> {
    for (const entry of this.entries.slice(from)) {
      if (!visit(entry)) break;
      this.onRead(entry.offset);
    }
    return Promise.resolve();
  }
}

class RecordingSession implements Session {
  readonly id = 'session';
  readonly sent: string[] = [];
  readonly liveHold = new LiveHold((matches) => this.record(matches));
  send(matches: readonly EventMatch[]): void {
    if (!this.liveHold.intercept(matches)) this.record(matches);
  }
  private record(matches: readonly EventMatch[]): void {
    for (const { event } of matches) this.sent.push(`${event.accountId}:${event.name}`);
  }
}

describe('ReplayService', () => {
  let log: FakeLog;
  let registry: SubscriptionRegistry;
  let service: ReplayService;
  let session: RecordingSession;

  /** Live delivery of one log entry to the session, as EventIngress would. */
  const live = (entry: LogEntry): void => {
    log.head = entry.offset;
    const message = entry.message as KazooMessage;
    for (const subscription of registry.of(session)) {
      if (subscription.accountId !== message.Account) continue;
      session.send([
        {
          subscription,
          event: {
            family: 'call',
            accountId: message.Account,
            name: message.Name as string,
            key: message.Name as string,
            payload: message,
            legacyName: message.Name as string,
            legacyPayload: message,
            routingKey: message.Name as string,
            position: entry.position,
            kazooData: () => message,
          },
        },
      ]);
    }
  };

  beforeEach(() => {
    log = new FakeLog();
    registry = new SubscriptionRegistry();
    session = new RecordingSession();
    const subscriptions = {
      subscribe: (
        target: Session,
        command: { accountId?: string; bindings: readonly string[] },
      ) => {
        for (const binding of command.bindings) {
          registry.add(target, command.accountId!, 'call', { binding, pattern: '*' }, []);
        }
        return Promise.resolve([...command.bindings]);
      },
    } as unknown as SubscriptionService;
    service = new ReplayService(
      subscriptions,
      registry,
      log,
      { windowMs: 120_000, concurrency: 1, maxWaiting: 0 },
      new EventStats(),
      new Clock(),
    );
  });

  const resume = (position: unknown): ReturnType<ReplayService['resume']> =>
    service.resume(session, { token: 't', accountId: 'mine', bindings: ['call.*'], position });

  it("replays the account's entries after the position, then live ones, none twice", async () => {
    const seen = log.append('mine', 'A');
    log.append('other', 'B');
    log.append('mine', 'C');
    log.head = 2;
    // Live delivery goes on while the replay reads: D arrives after C was read.
    log.onRead = (offset) => {
      if (offset === 1) live(log.append('mine', 'D'));
    };
    const result = await resume(seen.position);
    live(log.append('mine', 'E'));
    expect(result).toEqual({ subscribed: ['call.*'], recovered: true });
    expect(session.sent).toEqual(['mine:C', 'mine:D', 'mine:E']);
  });

  it('answers recovered false past the window, still subscribed live', async () => {
    const seen = log.append('mine', 'A');
    log.append('mine', 'B');
    log.head = 1;
    log.windowStart = 2;
    expect(await resume(seen.position)).toEqual({ subscribed: ['call.*'], recovered: false });
    live(log.append('mine', 'C'));
    expect(session.sent).toEqual(['mine:C']);
  });

  it('answers recovered false for a position of another epoch, refuses a non-string', async () => {
    log.append('mine', 'A');
    log.head = 0;
    expect((await resume('0123456789abcdef-0000000000000000')).recovered).toBe(false);
    await expect(resume(7)).rejects.toBeInstanceOf(BadRequestError);
  });

  it('refuses a second resume while the node has no slot and no room to wait', async () => {
    const seen = log.append('mine', 'A');
    log.append('mine', 'B');
    log.head = 1;
    let release: () => void = () => undefined;
    log.read = () => new Promise<void>((resolve) => (release = resolve));
    const first = resume(seen.position);
    await new Promise((resolve) => setImmediate(resolve));
    await expect(resume(seen.position)).rejects.toBeInstanceOf(ReplayBusyError);
    release();
    await first;
  });

  it('stops reading the log as soon as the resuming client is gone', async () => {
    const seen = log.append('mine', 'A');
    for (let i = 0; i < 100; i++) log.append('mine', `E${i}`);
    log.head = 100;
    const read: number[] = [];
    log.onRead = (offset) => {
      read.push(offset);
      // The client disconnects after two replayed entries.
      if (read.length === 2) registry.removeAll(session);
    };
    await resume(seen.position);
    expect(read).toEqual([1, 2]);
    expect(session.sent).toEqual(['mine:E0', 'mine:E1']);
  });
});
