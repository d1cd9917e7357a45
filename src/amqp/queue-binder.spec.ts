import { EventEmitter } from 'node:events';
import type { Channel } from 'amqplib';
import type { Environment } from '../config/environment';
import { BrokerRefusedError, ErrorCode } from '../core/errors';
import type { ChannelSource, ConnectionWatcher } from './broker-connection';
import { QueueBinder, UnknownExchangeError } from './queue-binder';

interface Held {
  release(): void;
}

/** What amqplib rejects an operation with when the broker closes the channel because of it. */
function brokerRefusal(code: number, text: string, message: string): Error {
  return Object.assign(
    new Error(`Operation failed: QueueBind; ${code} (${text}) with message "${message}"`),
    { code },
  );
}

/**
 * A broker seen through channels, enough for the binder: operations are logged, may be held
 * until the test releases them, or refused; a refusal closes the channel and fails every other
 * operation in flight on it, as RabbitMQ and amqplib do.
 */
class FakeBroker implements ChannelSource {
  isConnected = true;
  readonly stopping = false;
  readonly log: string[] = [];
  channelsOpened = 0;
  private readonly holds = new Map<string, Promise<void>>();
  private readonly refusals = new Map<string, Error>();

  watch(watcher: ConnectionWatcher): void {
    if (this.isConnected) watcher.connected();
  }

  openChannel(): Promise<Channel> {
    if (!this.isConnected) return Promise.reject(new Error('not connected'));
    this.channelsOpened++;
    return Promise.resolve(new FakeChannel(this) as unknown as Channel);
  }

  /** The next `operation` waits until released. */
  hold(operation: string): Held {
    let release!: () => void;
    this.holds.set(operation, new Promise<void>((resolve) => (release = resolve)));
    return { release: () => release() };
  }

  /** The next `operation` is refused. */
  refuse(operation: string, error: Error): void {
    this.refusals.set(operation, error);
  }

  respond(operation: string): Promise<void> {
    this.log.push(operation);
    const refusal = this.refusals.get(operation);
    if (refusal) {
      this.refusals.delete(operation);
      return Promise.reject(refusal);
    }
    const held = this.holds.get(operation);
    this.holds.delete(operation);
    return held ?? Promise.resolve();
  }
}

class FakeChannel extends EventEmitter {
  private closed = false;
  private readonly inFlight = new Set<(error: Error) => void>();

  constructor(private readonly broker: FakeBroker) {
    super();
  }

  assertExchange(exchange: string): Promise<void> {
    return this.run(`declare ${exchange}`);
  }

  checkExchange(exchange: string): Promise<void> {
    return this.run(`check ${exchange}`);
  }

  bindQueue(_queue: string, exchange: string, routingKey: string): Promise<void> {
    return this.run(`bind ${exchange} ${routingKey}`);
  }

  unbindQueue(_queue: string, exchange: string, routingKey: string): Promise<void> {
    return this.run(`unbind ${exchange} ${routingKey}`);
  }

  close(): Promise<void> {
    this.closeBecause();
    return Promise.resolve();
  }

  private run(operation: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error('Channel closed'));
    return new Promise<void>((resolve, reject) => {
      this.inFlight.add(reject);
      this.broker.respond(operation).then(
        () => {
          this.inFlight.delete(reject);
          resolve();
        },
        (error: Error) => {
          this.inFlight.delete(reject);
          reject(error);
          this.closeBecause();
        },
      );
    });
  }

  private closeBecause(): void {
    if (this.closed) return;
    this.closed = true;
    for (const reject of this.inFlight) {
      reject(new Error('Channel ended, no reply will be forthcoming'));
    }
    this.inFlight.clear();
    this.emit('close');
  }
}

const CALLS = { exchange: 'callevt', routingKey: 'call.CHANNEL_CREATE.*' };
const ANSWERS = { exchange: 'callevt', routingKey: 'call.CHANNEL_ANSWER.*' };
const PRESENCE = { exchange: 'presence', routingKey: 'update.*.*' };

/** Lets every queued promise callback run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}

function track(promise: Promise<void>): { readonly done: boolean; readonly error: unknown } {
  const state = { done: false, error: undefined as unknown };
  promise.then(
    () => (state.done = true),
    (error: unknown) => {
      state.done = true;
      state.error = error;
    },
  );
  return state;
}

describe('QueueBinder', () => {
  let broker: FakeBroker;
  let binder: QueueBinder;

  beforeEach(async () => {
    broker = new FakeBroker();
    binder = new QueueBinder(broker, { AMQP_EXCHANGE_CHECK_S: 0 } as Environment);
    binder.onApplicationBootstrap();
    binder.registerQueue('callevt', 'q.callevt');
    binder.registerQueue('presence', 'q.presence');
    await binder.queueReady('callevt');
    await binder.queueReady('presence');
    broker.log.length = 0;
  });

  afterEach(() => binder.beforeApplicationShutdown());

  describe('ordering per key', () => {
    it('answers an acquire of bound keys while another key is still being bound', async () => {
      await binder.acquire([CALLS]);
      const slow = broker.hold(`bind callevt ${ANSWERS.routingKey}`);
      const pending = track(binder.acquire([ANSWERS]));
      await settle();

      await binder.acquire([CALLS]);
      expect(pending.done).toBe(false);

      slow.release();
      await settle();
      expect(pending).toEqual({ done: true, error: undefined });
      expect(binder.boundKeys().map((k) => [k.routingKey, k.references])).toEqual([
        [CALLS.routingKey, 2],
        [ANSWERS.routingKey, 1],
      ]);
    });

    it('makes an acquire of a key whose bind is in flight wait for that bind only', async () => {
      const slow = broker.hold(`bind callevt ${CALLS.routingKey}`);
      const first = track(binder.acquire([CALLS]));
      const second = track(binder.acquire([CALLS]));
      await binder.acquire([PRESENCE]);
      await settle();
      expect([first.done, second.done]).toEqual([false, false]);

      slow.release();
      await settle();
      expect([first.done, second.done]).toEqual([true, true]);
      expect(broker.log.filter((op) => op.startsWith('bind callevt'))).toEqual([
        `bind callevt ${CALLS.routingKey}`,
      ]);
    });

    it('ends bound when a key is acquired again while its unbind is in flight', async () => {
      await binder.acquire([CALLS]);
      const unbinding = broker.hold(`unbind callevt ${CALLS.routingKey}`);
      binder.release([CALLS]);
      await settle();
      const again = track(binder.acquire([CALLS]));
      await settle();
      expect(again.done).toBe(false);

      unbinding.release();
      await settle();
      expect(again).toEqual({ done: true, error: undefined });
      expect(broker.log).toEqual([
        `bind callevt ${CALLS.routingKey}`,
        `unbind callevt ${CALLS.routingKey}`,
        `bind callevt ${CALLS.routingKey}`,
      ]);
      expect(binder.boundKeys()).toEqual([expect.objectContaining({ references: 1 })]);
    });

    it('skips the unbind when the key is acquired again before the unbind ran', async () => {
      await binder.acquire([CALLS]);
      const slowBind = broker.hold(`bind callevt ${ANSWERS.routingKey}`);
      const answers = track(binder.acquire([ANSWERS]));
      binder.release([ANSWERS]); // unbind queued behind the held bind
      const again = track(binder.acquire([ANSWERS]));
      slowBind.release();
      await settle();
      expect([answers.done, again.done]).toEqual([true, true]);
      expect(broker.log.filter((op) => op.includes(ANSWERS.routingKey))).toEqual([
        `bind callevt ${ANSWERS.routingKey}`,
      ]);
    });

    it('unbinds when the last reference goes, and forgets the key', async () => {
      await binder.acquire([CALLS]);
      await binder.acquire([CALLS]);
      binder.release([CALLS]);
      await settle();
      expect(broker.log).not.toContain(`unbind callevt ${CALLS.routingKey}`);
      binder.release([CALLS]);
      await settle();
      expect(broker.log).toContain(`unbind callevt ${CALLS.routingKey}`);
      expect(binder.boundKeys()).toEqual([]);
    });
  });

  describe('refusals', () => {
    it('rejects a refused bind with broker_refused, keeps no reference, and retries the keys it took down', async () => {
      const inFlight = broker.hold(`bind callevt ${ANSWERS.routingKey}`);
      const bystander = track(binder.acquire([ANSWERS]));
      await settle();
      broker.refuse(
        `bind callevt ${CALLS.routingKey}`,
        brokerRefusal(
          403,
          'ACCESS-REFUSED',
          "ACCESS_REFUSED - access to exchange 'callevt' in vhost '/' refused for user 'bh'",
        ),
      );
      const refused = binder.acquire([CALLS, PRESENCE]);

      await expect(refused).rejects.toBeInstanceOf(BrokerRefusedError);
      await expect(refused).rejects.toMatchObject({
        code: ErrorCode.BrokerRefused,
        temporary: false,
        message: expect.stringMatching(
          /call\.CHANNEL_CREATE\.\*.*callevt.*ACCESS_REFUSED - access to exchange 'callevt'/,
        ) as unknown,
      });
      inFlight.release();
      await settle();
      expect(bystander).toEqual({ done: true, error: undefined });
      // The refused key holds nothing; the other key of the same request was released.
      expect(binder.boundKeys().map((k) => k.routingKey)).toEqual([ANSWERS.routingKey]);
      expect(broker.log).toContain(`unbind presence ${PRESENCE.routingKey}`);

      // The binding channel is open again for whoever comes next.
      await binder.acquire([PRESENCE]);
      expect(binder.boundKeys().map((k) => k.routingKey)).toContain(PRESENCE.routingKey);
    });

    it('reports other refusals as temporary', async () => {
      broker.refuse(
        `bind callevt ${CALLS.routingKey}`,
        brokerRefusal(406, 'PRECONDITION-FAILED', 'PRECONDITION_FAILED - something'),
      );
      await expect(binder.acquire([CALLS])).rejects.toMatchObject({ temporary: true });
      expect(binder.boundKeys()).toEqual([]);
    });

    it('rejects an unknown exchange before taking any reference', async () => {
      await expect(
        binder.acquire([CALLS, { exchange: 'nowhere', routingKey: '#' }]),
      ).rejects.toBeInstanceOf(UnknownExchangeError);
      expect(binder.boundKeys()).toEqual([]);
    });
  });

  describe('exchanges', () => {
    it('uses an exchange declared with other flags as it is, after a passive check', async () => {
      binder.registerQueue('conference', 'q.conference');
      broker.refuse(
        'declare conference',
        brokerRefusal(
          406,
          'PRECONDITION-FAILED',
          "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'conference'",
        ),
      );
      await binder.queueReady('conference');
      await binder.acquire([{ exchange: 'conference', routingKey: 'conference.event.*' }]);

      expect(broker.log).toEqual([
        'declare conference',
        'check conference',
        'bind conference conference.event.*',
      ]);
      expect(binder.exchangeStatus().find((s) => s.exchange === 'conference')).toMatchObject({
        declaration: 'existing',
        problem: undefined,
      });
    });

    it('declares a deleted exchange again when a bind finds it missing, and re-binds its keys', async () => {
      await binder.acquire([CALLS]);
      broker.log.length = 0;
      broker.refuse(
        `bind callevt ${ANSWERS.routingKey}`,
        brokerRefusal(404, 'NOT-FOUND', "NOT_FOUND - no exchange 'callevt' in vhost '/'"),
      );
      await binder.acquire([ANSWERS]);
      await settle();

      expect(broker.log).toEqual(
        expect.arrayContaining([
          'declare callevt',
          `bind callevt ${CALLS.routingKey}`,
          `bind callevt ${ANSWERS.routingKey}`,
        ]),
      );
      expect(broker.log.filter((op) => op === `bind callevt ${ANSWERS.routingKey}`)).toHaveLength(
        2,
      );
      expect(binder.exchangeStatus().find((s) => s.exchange === 'callevt')).toMatchObject({
        redeclarations: 1,
      });
      expect(binder.unappliedKeys()).toEqual([]);
    });

    it('finds a deleted exchange with the periodic check and re-binds its keys', async () => {
      await binder.acquire([CALLS]);
      broker.log.length = 0;
      broker.refuse(
        'check callevt',
        brokerRefusal(404, 'NOT-FOUND', "NOT_FOUND - no exchange 'callevt' in vhost '/'"),
      );
      await binder.checkExchanges();
      await settle();
      expect(broker.log.slice(0, 2)).toEqual(['check callevt', 'declare callevt']);
      expect(broker.log.slice(2).sort()).toEqual(
        [`bind callevt ${CALLS.routingKey}`, 'check presence'].sort(),
      );
    });
  });

  describe('queue lifecycle', () => {
    it('records keys while the queue is not consumed and binds them when it is again', async () => {
      await binder.acquire([CALLS]);
      binder.queueLost('callevt', 'the broker cancelled the consumer (queue deleted)');
      expect(binder.unappliedKeys()).toEqual([
        expect.objectContaining({
          routingKey: CALLS.routingKey,
          reason: expect.stringContaining('queue deleted') as unknown,
        }),
      ]);

      await binder.acquire([ANSWERS]);
      expect(broker.log).toEqual([`bind callevt ${CALLS.routingKey}`]);

      await binder.queueReady('callevt');
      // The exchange was declared on this connection already: only the bindings are gone.
      expect(broker.log.slice(1)).toEqual([
        `bind callevt ${CALLS.routingKey}`,
        `bind callevt ${ANSWERS.routingKey}`,
      ]);
      expect(binder.unappliedKeys()).toEqual([]);
    });

    it('does not try to unbind from a queue that is gone', async () => {
      await binder.acquire([CALLS]);
      binder.queueLost('callevt', 'connection lost');
      binder.release([CALLS]);
      await settle();
      expect(broker.log).toEqual([`bind callevt ${CALLS.routingKey}`]);
      expect(binder.boundKeys()).toEqual([]);
    });
  });
});
