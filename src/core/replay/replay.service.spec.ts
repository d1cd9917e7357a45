import { SettableClock } from '../../../test/support/clock';
import { Clock } from '../clock';
import { BadRequestError, ReplayBusyError } from '../errors';
import { EventStats } from '../events/event-stats';
import { ALL_ACCOUNTS, type ExchangeReader, type KazooMessage } from '../families/event-family';
import type { EventMatch, Session } from '../session';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import type { SubscriptionService } from '../subscriptions/subscription.service';
import { LiveHold } from './live-hold';
import { formatPosition } from './log-position';
import type { LogEntry, ReplayLog } from './ports';
import { MAX_STALL_MS } from './replay-reads';
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
  /** Where each read started, in order. */
  readonly reads: number[] = [];
  /** Reads running now, and the most ever at once. */
  running = 0;
  mostRunning = 0;
  /** When set, a read yields to the event loop before each entry, as a broker consumer does. */
  paced = false;
  /** When set, a read gives at most this many entries, as a stream consumer that went quiet. */
  quietAfter: number | undefined;
  /** A read that gets nothing moves this clock by `quietReadMs`: a log waiting for a busy broker. */
  quietClock: SettableClock | undefined;
  quietReadMs = 0;
  /** How long the window probe takes on `quietClock`. */
  probeMs = 0;

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
    this.quietClock?.advance(this.probeMs);
    return Promise.resolve(this.windowStart);
  }
  async read(from: number, visit: (entry: LogEntry) => boolean): Promise<number | undefined> {
    this.reads.push(from);
    let last: number | undefined;
    this.mostRunning = Math.max(this.mostRunning, ++this.running);
    try {
      // Entries appended meanwhile are read too, as a stream consumer gets them.
      const end = Math.min(this.entries.length, from + (this.quietAfter ?? Infinity));
      for (let offset = from; offset < end; offset++) {
        if (this.paced) await new Promise((resolve) => setImmediate(resolve));
        last = offset;
        if (!visit(this.entries[offset])) break;
        this.onRead(offset);
      }
    } finally {
      this.running--;
    }
    if (last === undefined) this.quietClock?.advance(this.quietReadMs);
    return last;
  }
}

/** Turns of the event loop until `check` holds (a fake log's reads advance one entry a turn). */
async function until(what: string, check: () => boolean): Promise<void> {
  for (let turn = 0; turn < 10_000; turn++) {
    if (check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never: ${what}`);
}

class RecordingSession implements Session {
  readonly sent: string[] = [];
  constructor(readonly id = 'session') {}
  readonly liveHold = new LiveHold((matches) => this.record(matches));
  send(matches: readonly EventMatch[]): void {
    if (!this.liveHold.intercept(matches)) this.record(matches);
  }
  private record(matches: readonly EventMatch[]): void {
    for (const { event } of matches) this.sent.push(`${event.accountId}:${event.name}`);
  }
}

/** Subscribes every binding at once into `registry`, as the real service does once authorized. */
function subscriptionsInto(registry: SubscriptionRegistry): SubscriptionService {
  return {
    subscribe: (target: Session, command: { accountId?: string; bindings: readonly string[] }) => {
      for (const binding of command.bindings) {
        registry.add(target, command.accountId!, 'call', { binding, pattern: '*' }, []);
      }
      return Promise.resolve([...command.bindings]);
    },
  } as unknown as SubscriptionService;
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
    const subscriptions = subscriptionsInto(registry);
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

  it('refuses a resume that would wait with no room to wait, and a second one on a connection', async () => {
    for (let i = 0; i < 10; i++) log.append('mine', `E${i}`);
    log.head = 9;
    let release: () => void = () => undefined;
    // A read that holds its slot and has visited nothing yet: it starts at offset 6.
    const read = log.read.bind(log);
    log.read = () =>
      new Promise<number | undefined>((resolve) => (release = () => resolve(undefined)));
    const first = resume(log.entries[5].position);
    await until('the read to start', () => service.load.active === 1);
    await expect(resume(log.entries[5].position)).rejects.toBeInstanceOf(ReplayBusyError);
    const other = (id: string, position: string): ReturnType<ReplayService['resume']> =>
      service.resume(new RecordingSession(id), {
        token: 't',
        accountId: 'mine',
        bindings: ['call.*'],
        position,
      });
    // Wants offset 3, behind where the read starts: it would wait.
    await expect(other('behind', log.entries[2].position)).rejects.toBeInstanceOf(ReplayBusyError);
    // Wants offset 8, ahead of the read: it joins it, no room to wait needed.
    const ahead = other('ahead', log.entries[7].position);
    // Once subscribed it is in the read (no second read: this fake's would never end).
    await new Promise((resolve) => setImmediate(resolve));
    expect(service.load).toEqual({ active: 1, waiting: 0 });
    // The held pass ends with nothing read: the read goes on, and gets the entries this time.
    log.read = read;
    release();
    await first;
    expect((await ahead).recovered).toBe(true);
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

describe('ReplayService: resumes share reads of the log', () => {
  let log: FakeLog;
  let registry: SubscriptionRegistry;
  let stats: EventStats;

  beforeEach(() => {
    log = new FakeLog();
    registry = new SubscriptionRegistry();
    stats = new EventStats();
  });

  const serviceOf = (
    concurrency: number,
    maxWaiting = 10_000,
    clock: Clock = new Clock(),
  ): ReplayService => {
    const subscriptions = subscriptionsInto(registry);
    return new ReplayService(
      subscriptions,
      registry,
      log,
      { windowMs: 120_000, concurrency, maxWaiting },
      stats,
      clock,
    );
  };

  /** `count` entries, round-robin over `accounts`: entry i is `<account>:E<i>`. */
  const fill = (count: number, accounts: readonly string[]): void => {
    for (let i = 0; i < count; i++) log.append(accounts[i % accounts.length], `E${i}`);
    log.head = log.entries.length - 1;
  };

  /** What a client of `account` resuming after `offset` must get: its entries after it. */
  const missed = (account: string, offset: number): string[] =>
    log.entries
      .filter((entry) => entry.offset > offset)
      .map((entry) => entry.message as KazooMessage)
      .filter((message) => account === ALL_ACCOUNTS || message.Account === account)
      .map((message) => `${message.Account as string}:${message.Name as string}`);

  const resumeAs = (
    service: ReplayService,
    session: RecordingSession,
    account: string,
    offset: number,
  ): ReturnType<ReplayService['resume']> =>
    service.resume(session, {
      token: 't',
      accountId: account,
      bindings: ['call.*'],
      position: log.entries[offset].position,
    });

  it('a storm of 1,000 resumes at different positions costs at most `concurrency` reads', async () => {
    const accounts = ['a0', 'a1', 'a2', 'a3'];
    fill(2000, accounts);
    log.paced = true;
    const service = serviceOf(4);
    const members = Array.from({ length: 1000 }, (_, i) => ({
      session: new RecordingSession(`s${i}`),
      account: accounts[i % 4],
      offset: (i * 7919) % 1900,
    }));
    const results = await Promise.all(
      members.map((m) => resumeAs(service, m.session, m.account, m.offset)),
    );
    expect(results.every((result) => result.recovered)).toBe(true);
    // Compared as one string each: a thousand array diffs would take longer than the storm.
    const wrong = members.filter(
      (m) => m.session.sent.join() !== missed(m.account, m.offset).join(),
    );
    expect(wrong.map((m) => m.session.id)).toEqual([]);
    expect(members.every((m) => m.session.sent.length > 0)).toBe(true);
    expect(log.reads.length).toBeLessThanOrEqual(4);
    expect(log.mostRunning).toBeLessThanOrEqual(4);
    // The node read about one pass over the log, not one per client.
    expect(stats.replayReadEntries).toBeLessThanOrEqual(4 * 2000);
    expect(stats.replayReads).toBe(log.reads.length);
  });

  it('resumes trickling in while reads end at once (from memory) share reads, not one each', async () => {
    const accounts = ['a0', 'a1'];
    fill(200, accounts);
    const service = serviceOf(4);
    const members = Array.from({ length: 20 }, (_, i) => ({
      session: new RecordingSession(`s${i}`),
      account: accounts[i % 2],
      offset: i,
    }));
    // One every 5 ms: each read is over before the next resume arrives.
    const results: ReturnType<ReplayService['resume']>[] = [];
    for (const m of members) {
      results.push(resumeAs(service, m.session, m.account, m.offset));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect((await Promise.all(results)).every((result) => result.recovered)).toBe(true);
    const wrong = members.filter(
      (m) => m.session.sent.join() !== missed(m.account, m.offset).join(),
    );
    expect(wrong.map((m) => m.session.id)).toEqual([]);
    // About one read per 50 ms of arrivals (100 ms here), not twenty.
    expect(log.reads.length).toBeLessThanOrEqual(5);
  });

  it('a resume arriving mid-read joins it when its position is ahead, and gets everything after it', async () => {
    fill(400, ['a', 'b']);
    log.paced = true;
    const service = serviceOf(2);
    const first = new RecordingSession('first');
    const late = new RecordingSession('late');
    let lateResume: ReturnType<ReplayService['resume']> | undefined;
    log.onRead = (offset) => {
      if (offset === 50 && !lateResume) lateResume = resumeAs(service, late, 'b', 100);
    };
    expect((await resumeAs(service, first, 'a', 0)).recovered).toBe(true);
    expect((await lateResume!).recovered).toBe(true);
    expect(first.sent).toEqual(missed('a', 0));
    expect(late.sent).toEqual(missed('b', 100));
    expect(log.reads).toEqual([1]);
  });

  it('resumes behind the running read wait, then share one new read from the earliest', async () => {
    fill(1000, ['a', 'b']);
    log.paced = true;
    const service = serviceOf(1);
    const first = new RecordingSession('first');
    const behind = [new RecordingSession('b1'), new RecordingSession('b2')];
    const behindResumes: ReturnType<ReplayService['resume']>[] = [];
    log.onRead = (offset) => {
      // Only the first read's pass: the second one goes by offset 600 too.
      if (offset !== 600 || behindResumes.length > 0) return;
      behindResumes.push(resumeAs(service, behind[0], 'a', 100));
      behindResumes.push(resumeAs(service, behind[1], 'b', 300));
    };
    await resumeAs(service, first, 'a', 500);
    expect((await Promise.all(behindResumes)).map((r) => r.recovered)).toEqual([true, true]);
    expect(first.sent).toEqual(missed('a', 500));
    expect(behind[0].sent).toEqual(missed('a', 100));
    expect(behind[1].sent).toEqual(missed('b', 300));
    expect(log.reads).toEqual([501, 101]);
  });

  it('a client leaving mid-read does not stop the others', async () => {
    fill(300, ['a']);
    log.paced = true;
    const service = serviceOf(2);
    const leaving = new RecordingSession('leaving');
    const staying = new RecordingSession('staying');
    log.onRead = (offset) => {
      if (offset === 100) registry.removeAll(leaving);
    };
    const [left, stayed] = await Promise.all([
      resumeAs(service, leaving, 'a', 10),
      resumeAs(service, staying, 'a', 20),
    ]);
    expect([left.recovered, stayed.recovered]).toEqual([true, true]);
    expect(leaving.sent).toEqual(missed('a', 10).slice(0, 90));
    expect(staying.sent).toEqual(missed('a', 20));
    expect(log.reads).toEqual([11]);
  });

  it('a position past the window ends that resume only; the others in the read go on', async () => {
    fill(300, ['a']);
    log.windowStart = 50;
    log.paced = true;
    const service = serviceOf(2);
    const old = new RecordingSession('old');
    const recent = new RecordingSession('recent');
    const [lost, kept] = await Promise.all([
      resumeAs(service, old, 'a', 10),
      resumeAs(service, recent, 'a', 60),
    ]);
    expect([lost.recovered, kept.recovered]).toEqual([false, true]);
    expect(old.sent).toEqual([]);
    expect(recent.sent).toEqual(missed('a', 60));
    expect(log.reads).toEqual([11]);
    // Still subscribed live.
    expect(registry.of(old)).toHaveLength(1);
  });

  it('one read, several accounts: each client gets its own account only (`*` gets all)', async () => {
    fill(200, ['a', 'b', 'c']);
    log.paced = true;
    const service = serviceOf(3);
    const clients = [
      { session: new RecordingSession('a'), account: 'a', offset: 5 },
      { session: new RecordingSession('b'), account: 'b', offset: 30 },
      { session: new RecordingSession('c'), account: 'c', offset: 90 },
      { session: new RecordingSession('admin'), account: ALL_ACCOUNTS, offset: 120 },
    ];
    await Promise.all(clients.map((c) => resumeAs(service, c.session, c.account, c.offset)));
    for (const c of clients) expect(c.session.sent).toEqual(missed(c.account, c.offset));
    expect(clients[0].session.sent.every((sent) => sent.startsWith('a:'))).toBe(true);
    expect(log.reads).toEqual([6]);
  });

  it('a read that goes quiet before the live head is taken up where it stopped', async () => {
    fill(50, ['a', 'b']);
    log.quietAfter = 7;
    const service = serviceOf(2);
    const client = new RecordingSession('client');
    expect((await resumeAs(service, client, 'a', 2)).recovered).toBe(true);
    expect(client.sent).toEqual(missed('a', 2));
    expect(log.reads).toEqual([3, 10, 17, 24, 31, 38, 45]);
    expect(stats.replayReads).toBe(1);
  });

  it('a read that cannot get to the live head gives up after a few empty passes: recovered false', async () => {
    fill(20, ['a']);
    // Live delivery handed over entries a read does not get (retention took them, say).
    log.head = 25;
    const service = serviceOf(1);
    const client = new RecordingSession('client');
    expect((await resumeAs(service, client, 'a', 4)).recovered).toBe(false);
    expect(client.sent).toEqual(missed('a', 4));
    expect(log.reads).toEqual([5, ...Array<number>(10).fill(20)]);
    // Still subscribed live.
    expect(registry.of(client)).toHaveLength(1);
  });

  it('a read whose log waits long for what it cannot get gives up after MAX_STALL_MS, not ten waits', async () => {
    fill(20, ['a']);
    log.head = 25;
    // Each pass that gets nothing takes 12 s, as the stream waits for a stalled broker.
    const clock = new SettableClock('2026-11-30T12:00:00Z');
    log.quietClock = clock;
    log.quietReadMs = 12_000;
    const service = serviceOf(1, 10_000, clock);
    const client = new RecordingSession('client');
    const startedAt = clock.now().getTime();
    expect((await resumeAs(service, client, 'a', 4)).recovered).toBe(false);
    expect(client.sent).toEqual(missed('a', 4));
    // Three empty passes (36 s) pass MAX_STALL_MS; ten would have held the client for 2 minutes.
    expect(log.reads).toEqual([5, 20, 20, 20]);
    expect(clock.now().getTime() - startedAt).toBeLessThan(MAX_STALL_MS + 12_000);
    expect(registry.of(client)).toHaveLength(1);
  });

  it('counts a slow window probe toward MAX_STALL_MS', async () => {
    fill(20, ['a']);
    log.head = 25;
    const clock = new SettableClock('2026-11-30T12:00:00Z');
    log.quietClock = clock;
    // The probe waits 25 s on a stalled broker, and the read after it gets nothing: its first
    // empty pass of 12 s passes the bound (counted from after the probe, it would take three).
    log.probeMs = 25_000;
    log.quietReadMs = 12_000;
    const service = serviceOf(1, 10_000, clock);
    const client = new RecordingSession('client');
    expect((await resumeAs(service, client, 'a', 19)).recovered).toBe(false);
    expect(log.reads).toEqual([20]);
  });
});
