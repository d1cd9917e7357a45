import fc from 'fast-check';
import { WebSocket, type RawData } from 'ws';
import { callEvent } from '../support/kazoo-events';
import { Stack } from '../support/stack';

/**
 * Shared pieces of the protocol fuzz suites: run counts and seed from the environment, a guard
 * against faults the process would otherwise swallow, raw WebSocket connections that record what
 * they get, the bystander's marker events, and arbitraries of hostile JSON.
 */

/** Frames per protocol: a few thousand in CI, 100,000 with `npm run fuzz`. */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
/** Replays a run: fast-check prints the seed of a failing one. */
export const FUZZ_SEED =
  process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** A test's budget: its frames, at a few milliseconds each at worst, plus setup. */
export const FUZZ_TIMEOUT_MS = 60_000 + FUZZ_RUNS * 20;

/**
 * Request limits high enough that frames reach the handlers rather than the rate limiter, and a
 * small frame limit so oversized frames stay cheap.
 */
export const MAX_FRAME_BYTES = 4096;
export const FUZZ_ENV: Record<string, string> = {
  MAX_FRAME_BYTES: String(MAX_FRAME_BYTES),
  REQUEST_RATE_BURST: '1000000',
  REQUEST_RATE_PER_S: '1000000',
};

/** No shrinking: the server keeps state between frames, so a shrunk case rarely replays alone. */
export function fuzzParameters(): fc.Parameters<unknown> {
  return { numRuns: FUZZ_RUNS, seed: FUZZ_SEED, endOnFailure: true, verbose: 1 };
}

/** Node's own process, from `fuzz.environment.js`; the test's `process` is a copy. */
const nodeProcess: NodeJS.Process =
  (globalThis as { nodeProcess?: NodeJS.Process }).nodeProcess ?? process;

/** Records faults no handler caught, which fail the suite. */
export class ProcessFaults {
  readonly faults: string[] = [];
  private readonly onFault = (error: unknown): void => {
    this.faults.push(error instanceof Error ? (error.stack ?? error.message) : String(error));
  };

  start(): this {
    nodeProcess.on('unhandledRejection', this.onFault);
    nodeProcess.on('uncaughtException', this.onFault);
    return this;
  }

  stop(): void {
    nodeProcess.off('unhandledRejection', this.onFault);
    nodeProcess.off('uncaughtException', this.onFault);
  }
}

/**
 * The node one fuzz suite hammers: started before the suite on `FUZZ_ENV`, with the process
 * watched for faults no handler caught, and closed after it with whatever the test opened.
 */
export class FuzzedNode {
  readonly faults = new ProcessFaults();
  private started: Stack | undefined;
  private readonly closers: (() => void)[] = [];

  /** Registers the suite's `beforeAll` and `afterAll`. */
  static forSuite(): FuzzedNode {
    const node = new FuzzedNode();
    beforeAll(async () => {
      node.faults.start();
      node.started = await Stack.start({ env: FUZZ_ENV });
    });
    afterAll(async () => {
      node.closers.forEach((close) => close());
      node.faults.stop();
      await node.started?.close();
    });
    return node;
  }

  get stack(): Stack {
    if (!this.started) throw new Error('the fuzzed node is not started');
    return this.started;
  }

  /** Closed after the suite, also when the test failed half-way. */
  closeAfter(close: () => void): void {
    this.closers.push(close);
  }

  /** The node came through: it answers, its last-resort guard never fired, no fault escaped. */
  async expectUnharmed(): Promise<void> {
    const health = await this.stack.gateway.health();
    expect(health.status).toBe(200);
    expect(health.body.events.internal_error_disconnects).toBe(0);
    expect(this.faults.faults).toEqual([]);
  }
}

/** What a wait for an answer gets instead when the server closed the connection. */
export const CLOSED: unique symbol = Symbol('closed');
export type Answer = string | typeof CLOSED;

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

/**
 * Resolves with what `check` finds, re-checked each time the connection calls its `listeners`
 * (a message came or it closed); rejects after `timeoutMs` naming the last `messages`.
 */
export function answerOf(
  check: () => Answer | undefined,
  listeners: Set<() => void>,
  messages: readonly string[],
  timeoutMs: number,
): Promise<Answer> {
  const now = check();
  if (now !== undefined) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    const listener = (): void => {
      const found = check();
      if (found === undefined) return;
      clearTimeout(timer);
      listeners.delete(listener);
      resolve(found);
    };
    const timer = setTimeout(() => {
      listeners.delete(listener);
      reject(
        new Error(`no answer within ${timeoutMs} ms; last: ${messages.slice(-3).join(' | ')}`),
      );
    }, timeoutMs);
    listeners.add(listener);
  });
}

/** A WebSocket that records every message as text and how it was closed. */
export class RawSocket {
  readonly messages: string[] = [];
  closeInfo: CloseInfo | undefined;
  /** Answers keep-alives (engine.io's `2` ping) the moment they come. */
  autoReply: ((message: string) => string | undefined) | undefined;
  private readonly listeners = new Set<() => void>();

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data: RawData) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      const text = bytes.toString('utf8');
      this.messages.push(text);
      const reply = this.autoReply?.(text);
      if (reply !== undefined) this.send(reply);
      this.listeners.forEach((listener) => listener());
    });
    socket.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.listeners.forEach((listener) => listener());
    });
    // A refused or reset connection shows up as a close (1006) as well.
    socket.on('error', () => undefined);
  }

  static async open(url: string, timeoutMs = 5000): Promise<RawSocket> {
    const socket = new WebSocket(url.replace(/^http/, 'ws'));
    const raw = new RawSocket(socket);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no WebSocket to ${url}`)), timeoutMs);
      socket.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('close', () => {
        clearTimeout(timer);
        reject(new Error(`WebSocket to ${url} closed while opening`));
      });
    });
    return raw;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN && this.closeInfo === undefined;
  }

  send(data: string | Buffer, binary = false): void {
    // With a callback, a send racing the server's close reports instead of throwing.
    this.socket.send(data, { binary }, () => undefined);
  }

  /**
   * The first message at `from` or later that `match` accepts, or `closed` once the server has
   * closed the connection.
   */
  waitFor(match: (message: string) => boolean, from = 0, timeoutMs = 5000): Promise<Answer> {
    const check = (): Answer | undefined => {
      for (let i = from; i < this.messages.length; i++) {
        if (match(this.messages[i])) return this.messages[i];
      }
      return this.closeInfo ? CLOSED : undefined;
    };
    return answerOf(check, this.listeners, this.messages, timeoutMs);
  }

  close(): void {
    this.socket.terminate();
  }
}

/** A fixed number of fuzzed connections; one the server closed is replaced on next use. */
export class ConnectionPool<C extends { readonly isOpen: boolean; close(): void }> {
  private readonly connections: (C | undefined)[];
  /** Every connection ever opened, for the final checks. */
  readonly opened: C[] = [];

  constructor(
    readonly size: number,
    private readonly open: () => Promise<C>,
  ) {
    this.connections = new Array<C | undefined>(size);
  }

  async get(index: number): Promise<C> {
    const current = this.connections[index];
    if (current?.isOpen) return current;
    current?.close();
    const fresh = await this.open();
    this.connections[index] = fresh;
    this.opened.push(fresh);
    return fresh;
  }

  closeAll(): void {
    this.opened.forEach((connection) => connection.close());
  }
}

/**
 * Marker events of the bystander's account, published while the fuzzing runs: the bystander
 * must get every one, in order, and no fuzzed connection any.
 */
export class Markers {
  readonly published: string[] = [];
  private frames = 0;

  constructor(
    private readonly stack: Stack,
    private readonly accountId: string,
    private readonly prefix: string,
    private readonly every = Math.max(1, Math.floor(FUZZ_RUNS / 50)),
  ) {}

  /** Called once per fuzzed frame; publishes a marker every `every` frames. */
  async tick(): Promise<void> {
    this.frames += 1;
    if (this.frames % this.every === 0) await this.publish();
  }

  async publish(): Promise<string> {
    const callId = `${this.prefix}-${this.published.length}`;
    const event = callEvent('CHANNEL_CREATE', this.accountId, callId);
    await this.stack.publisher.publish('callevt', event.routingKey, event.body);
    this.published.push(callId);
    return callId;
  }

  /** Marker call ids found in `texts`, in order. */
  found(texts: readonly string[]): string[] {
    const pattern = new RegExp(`${this.prefix}-\\d+`, 'g');
    return texts.flatMap((text) => text.match(pattern) ?? []);
  }
}

// ---- arbitraries ------------------------------------------------------------------------------

/** Any JSON value, a few levels deep. */
export const anyJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });

/** Arrays or objects nested far deeper than any handler expects. */
export const deeplyNested: fc.Arbitrary<unknown> = fc
  .tuple(fc.integer({ min: 10, max: 600 }), fc.boolean())
  .map(([depth, asObject]) => {
    let value: unknown = 'core';
    for (let i = 0; i < depth; i++) value = asObject ? { a: value } : [value];
    return value;
  });

/** Values of every JSON type, for fields that expect one. */
export const wrongTyped: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.string({ maxLength: 40 }),
  fc.array(anyJson, { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), anyJson, { maxKeys: 4 }),
  deeplyNested,
  fc.constant(''),
  fc.constant({}),
  fc.constant([]),
);

const KNOWN_BINDINGS = [
  'call.CHANNEL_CREATE.*',
  'call.*.*',
  'call.CHANNEL_ANSWER.some-call',
  'conference.event.*.*',
  'conference.command.*',
  'fax.status.*',
  'object.doc_created.user',
  'object.*.*',
  'presence.update.*',
  'skeleton.*',
  '*.*',
  '#',
  '*',
  'call.',
  '.',
  'call.CHANNEL_CREATE.*.*.*',
];

export const binding: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_BINDINGS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: wrongTyped },
);

export const bindings: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.array(binding, { maxLength: 6 }) },
  {
    weight: 1,
    arbitrary: fc.array(fc.constantFrom(...KNOWN_BINDINGS), { minLength: 90, maxLength: 120 }),
  },
  { weight: 1, arbitrary: wrongTyped },
);

/** Tokens: the fuzzed account's real one, garbage, or the wrong type. */
export const token = (valid: string): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(valid) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.constant(`${valid}x`) },
    { weight: 1, arbitrary: wrongTyped },
  );

/** Account ids: the fuzzed account, the bystander's (must be refused), `*`, garbage. */
export const accountId = (own: string, bystander: string): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(own) },
    { weight: 2, arbitrary: fc.constant(bystander) },
    { weight: 1, arbitrary: fc.constant('*') },
    { weight: 1, arbitrary: fc.stringMatching(/^[0-9a-f]{32}$/) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: wrongTyped },
  );

/** The body of a subscribe or unsubscribe, each field present or not, typed right or not. */
export const requestBody = (valid: string, own: string, bystander: string) =>
  fc.record(
    {
      auth_token: token(valid),
      account_id: accountId(own, bystander),
      binding,
      bindings,
      name: anyJson,
      metadata: fc.oneof(anyJson, deeplyNested),
    },
    { requiredKeys: [] },
  );

/** Truncates a text at a random point (an incomplete JSON document, mostly). */
export const truncated = (text: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc
    .tuple(text, fc.nat())
    .filter(([whole]) => whole.length > 1)
    .map(([whole, at]) => whole.slice(0, 1 + (at % (whole.length - 1))));

/** A text over `MAX_FRAME_BYTES`. */
export const oversized: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 1, max: 2048 }), fc.constantFrom('x', '{', '"', 'é'))
  .map(([extra, filler]) => filler.repeat(MAX_FRAME_BYTES + extra));

/** Random bytes, invalid UTF-8 included. */
export const randomBytes: fc.Arbitrary<Buffer> = fc
  .uint8Array({ maxLength: 300 })
  .map((bytes) => Buffer.from(bytes));

/** Random text, of any Unicode, control characters included. */
export const randomText: fc.Arbitrary<string> = fc.string({ maxLength: 200, unit: 'grapheme' });
