import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { redactCredentials } from '../config/environment';
import {
  KAZOO_EXCHANGES,
  callEvent,
  conferenceEvent,
  dialogUpdate,
  documentEvent,
  faxStatus,
  mwiUpdate,
  presenceUpdate,
  type KazooAccount,
  type KazooCall,
  type KazooConferenceMember,
  type KazooDelivery,
  type KazooDevice,
  type KazooDialog,
  type KazooDocument,
  type KazooFaxJob,
  type KazooJson,
} from './kazoo-events';

/** A closed range of milliseconds. */
export interface MsRange {
  readonly min: number;
  readonly max: number;
}

export interface EventSimulatorOptions {
  /** The RabbitMQ Kazoo would publish to (the gateway's `AMQP_URL`). */
  readonly amqpUrl: string;
  /** The accounts that get traffic; each one's scenarios run independently. */
  readonly accounts: readonly KazooAccount[];
  /** Pause between two events of one account, picked at random in the range. 300–800 ms by default. */
  readonly intervalMs?: MsRange;
  /** Reconnection backoff: the first pause, doubled after each failure up to `max`. 1–30 s by default. */
  readonly reconnectMs?: MsRange;
}

/** The declaration Kazoo uses for its exchanges; declaring them otherwise fails with 406. */
const KAZOO_EXCHANGE_OPTIONS = { durable: false, autoDelete: false } as const;

/**
 * Publishes realistic Kazoo traffic for a few accounts into RabbitMQ, as Kazoo's own
 * applications would: calls with their presence dialogs and voicemail MWI updates, conference
 * members joining and leaving, outgoing faxes and document changes. Each account's scenarios are
 * interleaved, one event every `intervalMs`.
 *
 * The simulator survives RabbitMQ being down: it retries with a backoff, logs once per outage,
 * pauses its scenarios meanwhile and never lets an error escape to the process.
 */
export class EventSimulator {
  private readonly logger = new Logger(EventSimulator.name);
  private readonly intervalMs: MsRange;
  private readonly reconnectMs: MsRange;
  private running = false;
  private loops: Promise<void>[] = [];
  /** Resolvers of every pending pause, so `stop()` ends them at once. */
  private readonly wakers = new Set<() => void>();
  private connection: ChannelModel | undefined;
  private channel: ConfirmChannel | undefined;
  /** Set while RabbitMQ is unreachable, so an outage is logged once, not at every attempt. */
  private outage = false;
  private connectedOnce = false;
  private publishedCount = 0;

  constructor(private readonly options: EventSimulatorOptions) {
    this.intervalMs = options.intervalMs ?? { min: 300, max: 800 };
    this.reconnectMs = options.reconnectMs ?? { min: 1000, max: 30_000 };
  }

  /** Events the broker has confirmed so far. */
  get published(): number {
    return this.publishedCount;
  }

  /** Starts connecting and publishing; returns at once, whether or not RabbitMQ is up. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = [
      this.guard('connection', () => this.connectionLoop()),
      ...this.options.accounts.map((account) =>
        this.guard(`account ${account.id}`, () => this.accountLoop(new AccountTraffic(account))),
      ),
    ];
  }

  /** Stops publishing and closes the connection. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wakeAll();
    await Promise.all(this.loops);
    this.loops = [];
    await this.disconnect();
  }

  private async connectionLoop(): Promise<void> {
    let retryMs = this.reconnectMs.min;
    while (this.running) {
      try {
        await this.connect();
      } catch (error) {
        this.reportOutage(error);
        this.logger.debug(
          `cannot reach RabbitMQ (${reasonOf(error)}); next attempt in ${retryMs} ms`,
        );
        await this.pause(retryMs);
        retryMs = Math.min(retryMs * 2, this.reconnectMs.max);
        continue;
      }
      retryMs = this.reconnectMs.min;
      await this.untilConnectionLost();
      await this.disconnect();
      if (this.running) this.reportOutage(new Error('connection lost'));
    }
  }

  private async connect(): Promise<void> {
    const connection = await connect(this.options.amqpUrl, {
      timeout: 5000,
      clientProperties: { connection_name: 'blackhole demo event simulator' },
    });
    // Errors are followed by `close`, which is where the loss is handled; without a listener an
    // `error` event would be thrown and take the process down.
    connection.on('error', () => undefined);
    try {
      const channel = await connection.createConfirmChannel();
      channel.on('error', () => undefined);
      for (const exchange of Object.values(KAZOO_EXCHANGES)) {
        await channel.assertExchange(exchange, 'topic', KAZOO_EXCHANGE_OPTIONS);
      }
      this.connection = connection;
      this.channel = channel;
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
    if (!this.running) return;
    const where = redactCredentials(this.options.amqpUrl) ?? '';
    if (this.outage) this.logger.log(`RabbitMQ at ${where} is back; publishing resumes`);
    else if (!this.connectedOnce) {
      this.logger.log(
        `publishing demo events for ${this.options.accounts.length} accounts to ${where}`,
      );
    }
    this.outage = false;
    this.connectedOnce = true;
  }

  /** Resolves when the connection or its channel closes, or when the simulator stops. */
  private untilConnectionLost(): Promise<void> {
    const { connection, channel } = this;
    if (!this.running || connection === undefined || channel === undefined) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const lost = (): void => {
        this.wakers.delete(lost);
        connection.off('close', lost);
        channel.off('close', lost);
        resolve();
      };
      this.wakers.add(lost);
      connection.once('close', lost);
      channel.once('close', lost);
    });
  }

  private async disconnect(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    this.channel = undefined;
    // Already closed when the broker went away; closing again only reports that.
    await connection?.close().catch(() => undefined);
  }

  private reportOutage(error: unknown): void {
    if (this.outage || !this.running) return;
    this.outage = true;
    this.logger.warn(
      `RabbitMQ at ${redactCredentials(this.options.amqpUrl) ?? ''} is unavailable (${reasonOf(error)}); ` +
        `retrying every ${this.reconnectMs.min / 1000}–${this.reconnectMs.max / 1000} s`,
    );
  }

  private async accountLoop(traffic: AccountTraffic): Promise<void> {
    while (this.running) {
      const { min, max } = this.intervalMs;
      await this.pause(min + Math.random() * (max - min));
      const channel = this.channel;
      // While RabbitMQ is away the account's scenarios wait where they are.
      if (!this.running || channel === undefined) continue;
      const delivery = traffic.next();
      try {
        await publish(channel, delivery);
        this.publishedCount += 1;
      } catch {
        // The message went down with the connection; the connection loop reports the outage.
      }
    }
  }

  /** Runs a loop and logs anything it throws: a simulator bug must not stop the gateway. */
  private async guard(what: string, loop: () => Promise<void>): Promise<void> {
    try {
      await loop();
    } catch (error) {
      this.logger.error(
        `${what} stopped: ${error instanceof Error ? error.message : String(error)}`,
        error instanceof Error ? error.stack : undefined,
      );
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  private wakeAll(): void {
    for (const wake of [...this.wakers]) wake();
  }
}

/** Publishes one message as Kazoo does (JSON body) and resolves once the broker confirmed it. */
function publish(channel: ConfirmChannel, delivery: KazooDelivery): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    try {
      channel.publish(
        delivery.exchange,
        delivery.routingKey,
        Buffer.from(JSON.stringify(delivery.body)),
        { contentType: 'application/json' },
        (error: unknown) => (error ? reject(toError(error)) : resolve()),
      );
    } catch (error) {
      // amqplib throws synchronously on a channel that has just closed.
      reject(toError(error));
    }
  });
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

// --- the traffic of one account ----------------------------------------------------------------

type ScenarioKind = 'call' | 'conference' | 'fax' | 'documents';

/** Calls come most often; the other scenarios take turns. */
const SCHEDULE: readonly ScenarioKind[] = [
  'call',
  'conference',
  'call',
  'fax',
  'call',
  'documents',
];

/** Scenarios running side by side in one account, so their events interleave. */
const CONCURRENT_SCENARIOS = 3;

/** A small seeded generator (mulberry32): the same account name gives the same people. */
function seededRandom(seed: string): () => number {
  let state = createHash('md5').update(seed).digest().readUInt32LE(0);
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST_NAMES = [
  'Alice',
  'Bruno',
  'Carla',
  'Dmitri',
  'Emma',
  'Farid',
  'Grace',
  'Hiro',
  'Ines',
  'Jonas',
  'Keiko',
  'Liam',
  'Maya',
  'Nils',
  'Olivia',
  'Pavel',
];
const LAST_NAMES = [
  'Martin',
  'Costa',
  'Nakamura',
  'Okafor',
  'Schmidt',
  'Rossi',
  'Dubois',
  'Novak',
  'Silva',
  'Larsen',
  'Haddad',
  'Walsh',
];
/** Phones the account's people use, each with the Call-ID style of its SIP stack. */
const PHONES: readonly { userAgent: string; callId: (ip: string) => string }[] = [
  {
    userAgent: 'Yealink SIP-T46S 66.86.0.15',
    callId: (ip) => `0_${randomBytes(4).readUInt32BE(0)}@${ip}`,
  },
  {
    userAgent: 'PolycomVVX-VVX_450-UA/6.4.3.5018',
    callId: (ip) => {
      const hex = randomBytes(12).toString('hex');
      return `${hex.slice(0, 8)}-${hex.slice(8, 16)}-${hex.slice(16)}@${ip}`;
    },
  },
  {
    userAgent: 'SIP.js/0.21.2',
    // Lower-case letters and digits, like fixture 02's `at6dmu4ffk97vnlp6qfq`.
    callId: () =>
      BigInt(`0x${randomBytes(13).toString('hex')}`)
        .toString(36)
        .slice(0, 20),
  },
  { userAgent: 'Z 5.6.6 v2.10.20.3', callId: () => randomBytes(16).toString('base64url') },
];

/** External numbers the account calls, with the name the far end shows. */
const EXTERNAL_NUMBERS = [
  '+14155550132',
  '+14155550187',
  '+442079460958',
  '+33142868200',
  '+4930901820',
  '+16175550104',
];

interface Person {
  readonly device: KazooDevice;
  readonly callId: () => string;
}

/** One account's people, mailboxes and running scenarios. */
class AccountTraffic {
  private readonly random: () => number;
  private readonly people: Person[];
  private readonly mailboxes = new Map<string, { new: number; saved: number }>();
  private readonly slots: Iterator<KazooDelivery>[] = [];
  private nextSlot = 0;
  private scheduled = 0;
  private participantIds = 0;
  /** Users created by a `documents` scenario, removed again by a later one. */
  private readonly newcomers: {
    user: KazooDocument;
    device: KazooDocument;
    callflow: KazooDocument;
  }[] = [];
  private readonly conferenceId: string;
  private readonly faxboxId: string;

  constructor(private readonly account: KazooAccount) {
    this.random = seededRandom(account.name);
    this.conferenceId = stableId(account.id, 'conference');
    this.faxboxId = stableId(account.id, 'faxbox');
    const lan = 10 + Math.floor(this.random() * 200);
    this.people = Array.from({ length: 6 }, (_, index) => {
      const name = `${this.pick(FIRST_NAMES)} ${this.pick(LAST_NAMES)}`;
      const extension = String(1001 + index);
      const phone = this.pick(PHONES);
      const ip = `192.168.${lan}.${21 + index}`;
      return {
        device: {
          id: stableId(account.id, `device ${extension}`),
          ownerId: stableId(account.id, `user ${extension}`),
          username: `user_${stableId(account.id, `sip ${extension}`).slice(0, 10)}`,
          extension,
          name,
          userAgent: phone.userAgent,
          ip,
        },
        callId: () => phone.callId(ip),
      };
    });
    for (let slot = 0; slot < CONCURRENT_SCENARIOS; slot += 1) this.slots.push(this.nextScenario());
  }

  /** The next event of the account: scenarios take turns, and a finished one is replaced. */
  next(): KazooDelivery {
    for (;;) {
      const slot = this.nextSlot;
      this.nextSlot = (slot + 1) % this.slots.length;
      const step = this.slots[slot].next();
      if (!step.done) return step.value;
      this.slots[slot] = this.nextScenario();
    }
  }

  private nextScenario(): Iterator<KazooDelivery> {
    const kind = SCHEDULE[this.scheduled % SCHEDULE.length];
    this.scheduled += 1;
    switch (kind) {
      case 'call':
        return this.call();
      case 'conference':
        return this.conference();
      case 'fax':
        return this.fax();
      case 'documents':
        return this.documents();
    }
  }

  /**
   * A device calls a colleague, an outside number or its voicemail (`*97`): CREATE, ANSWER
   * and DESTROY on one call-id, with the caller's presence dialog alongside, and an MWI update
   * when a voicemail is left or listened to.
   */
  private *call(): Generator<KazooDelivery> {
    const caller = this.pick(this.people);
    const roll = this.random();
    const callee = roll < 0.55 ? this.pick(this.people.filter((p) => p !== caller)) : undefined;
    const checksVoicemail = callee === undefined && roll > 0.9;
    const dialed =
      callee?.device.extension ?? (checksVoicemail ? '*97' : this.pick(EXTERNAL_NUMBERS));
    const answered = checksVoicemail || this.random() < 0.8;
    // An unanswered colleague's voicemail picks up; an unanswered outside number is given up on.
    const leavesVoicemail = callee !== undefined && !answered;
    const callId = caller.callId();
    const base: KazooCall = {
      account: this.account,
      callId,
      device: caller.device,
      dialed,
      fromTag: randomBytes(5).toString('hex'),
      toTag: randomBytes(6).toString('base64url'),
      createdAt: new Date(),
    };
    const dialog: KazooDialog = {
      account: this.account,
      callId,
      fromUser: caller.device.extension,
      toUser: dialed,
      fromTag: base.fromTag,
      toTag: base.toTag,
      targetCallId: randomUUID(),
    };
    yield callEvent('CHANNEL_CREATE', base, base.createdAt);
    yield dialogUpdate(dialog, 'early');
    if (callee !== undefined) yield presenceUpdate(dialog, 'early');
    const connected = answered || leavesVoicemail;
    const call: KazooCall = connected ? { ...base, answeredAt: new Date() } : base;
    if (connected) {
      yield callEvent('CHANNEL_ANSWER', call, call.answeredAt);
      yield dialogUpdate(dialog, 'confirmed');
    }
    yield callEvent(
      'CHANNEL_DESTROY',
      { ...call, hangupCause: connected ? 'NORMAL_CLEARING' : 'ORIGINATOR_CANCEL' },
      new Date(),
    );
    yield dialogUpdate(dialog, 'terminated');
    if (callee !== undefined) yield presenceUpdate(dialog, 'terminated');
    if (leavesVoicemail) {
      const box = this.mailbox(callee.device.extension);
      box.new += 1;
      yield mwiUpdate(this.account, callee.device.extension, box);
    } else if (checksVoicemail) {
      const box = this.mailbox(caller.device.extension);
      box.saved += box.new;
      box.new = 0;
      yield mwiUpdate(this.account, caller.device.extension, box);
    }
  }

  /** Colleagues join the account's conference, one of them talks, and they all leave. */
  private *conference(): Generator<KazooDelivery> {
    const instanceId = randomUUID();
    const count = 2 + Math.floor(this.random() * 2);
    const members: KazooConferenceMember[] = this.sample(this.people, count).map(
      (person, index) => ({
        account: this.account,
        conferenceId: this.conferenceId,
        instanceId,
        callId: person.callId(),
        participantId: (this.participantIds += 1),
        device: person.device,
        moderator: index === 0,
      }),
    );
    for (const member of members) yield conferenceEvent('add-member', member);
    const speaker = this.pick(members);
    yield conferenceEvent('start-talking', speaker);
    yield conferenceEvent('stop-talking', speaker);
    for (const member of members) yield conferenceEvent('del-member', member);
  }

  /**
   * An outgoing fax as `fax_worker` reports it: start, prepare, send page by page, end; then
   * the job document is moved into the month database (`doc_created` of type `fax`).
   */
  private *fax(): Generator<KazooDelivery> {
    const createdAt = new Date();
    const month = `${createdAt.getUTCFullYear()}${String(createdAt.getUTCMonth() + 1).padStart(2, '0')}`;
    const job: KazooFaxJob = {
      account: this.account,
      jobId: `${month}-${randomBytes(16).toString('hex')}`,
      faxboxId: this.faxboxId,
    };
    const pages = 1 + Math.floor(this.random() * 3);
    const info = (page: number, extra: KazooJson = {}): KazooJson => ({
      'Fax-ECM-Used': true,
      'Fax-Transfer-Rate': 14400,
      'Fax-Transferred-Pages': page,
      'Fax-Total-Pages': pages,
      'Fax-Remote-Station-ID': 'ACME LEGAL',
      ...extra,
    });
    yield faxStatus(job, 'start', 'job acquired');
    yield faxStatus(job, 'prepare', 'prepared document for send');
    yield faxStatus(job, 'send', 'ready to send');
    yield faxStatus(job, 'send', 'Fax negotiated at 14400', { faxInfo: info(0) });
    for (let page = 1; page <= pages; page += 1) {
      yield faxStatus(job, 'send', `Sent Page ${page} of ${pages}`, { page, faxInfo: info(page) });
    }
    yield faxStatus(job, 'end', 'Fax Successfully sent', {
      page: pages,
      faxInfo: info(pages, { 'Fax-Success': true, 'Fax-Result-Code': 0, 'Fax-Result-Text': 'OK' }),
    });
    yield documentEvent('doc_created', {
      account: this.account,
      type: 'fax',
      id: job.jobId,
      revision: 1,
      createdAt,
      month: createdAt,
    });
  }

  /**
   * An administrator onboards someone (user, device and callflow created, then the user
   * edited) or offboards someone onboarded earlier (callflow, device and user deleted).
   */
  private *documents(): Generator<KazooDelivery> {
    const leaver =
      this.newcomers.length > 1 || this.random() < 0.4 ? this.newcomers.shift() : undefined;
    if (leaver !== undefined) {
      const { user, device, callflow } = leaver;
      for (const document of [callflow, device, user]) {
        yield documentEvent('doc_deleted', { ...document, revision: document.revision + 1 });
      }
      return;
    }
    const createdAt = new Date();
    const document = (type: string): KazooDocument => ({
      account: this.account,
      type,
      id: randomBytes(16).toString('hex'),
      revision: 1,
      createdAt,
    });
    const user = document('user');
    const device = document('device');
    const callflow = document('callflow');
    yield documentEvent('doc_created', user, createdAt);
    yield documentEvent('doc_created', device);
    yield documentEvent('doc_created', callflow);
    const edited = { ...user, revision: 2 };
    yield documentEvent('doc_edited', edited);
    this.newcomers.push({ user: edited, device, callflow });
  }

  private mailbox(user: string): { new: number; saved: number } {
    let box = this.mailboxes.get(user);
    if (box === undefined) {
      box = { new: 0, saved: 0 };
      this.mailboxes.set(user, box);
    }
    return box;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }

  /** `count` different items, in random order. */
  private sample<T>(items: readonly T[], count: number): T[] {
    const pool = [...items];
    const chosen: T[] = [];
    while (chosen.length < count && pool.length > 0) {
      chosen.push(...pool.splice(Math.floor(this.random() * pool.length), 1));
    }
    return chosen;
  }
}

/** A 32-hex id that stays the same for the same account and purpose, run after run. */
function stableId(accountId: string, purpose: string): string {
  return createHash('md5').update(`${accountId}/${purpose}`).digest('hex');
}
