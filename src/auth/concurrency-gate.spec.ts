import { ConcurrencyGate, GateFullError } from './concurrency-gate';

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every settled promise's reactions run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ConcurrencyGate', () => {
  it('runs at most maxInFlight tasks, queues maxQueued, refuses the rest at once', async () => {
    const gate = new ConcurrencyGate(2, 2);
    const started: number[] = [];
    const finish = [deferred(), deferred(), deferred(), deferred()];
    const never = new AbortController().signal;
    const runs = finish.map((done, i) =>
      gate.run(() => {
        started.push(i);
        return done.promise;
      }, never),
    );
    const refused = gate.run(() => Promise.resolve(), never);
    await expect(refused).rejects.toBeInstanceOf(GateFullError);
    await settle();
    expect(started).toEqual([0, 1]);
    expect(gate.load).toEqual({ inFlight: 2, queued: 2, refusedBusy: 1 });

    finish[1].resolve();
    await settle();
    expect(started).toEqual([0, 1, 2]);
    finish[0].reject(new Error('task failed'));
    await expect(runs[0]).rejects.toThrow('task failed');
    await settle();
    // A failed task frees its slot too; waiters start in arrival order.
    expect(started).toEqual([0, 1, 2, 3]);
    finish[2].resolve();
    finish[3].resolve();
    await Promise.all(runs.slice(1));
    expect(gate.load).toEqual({ inFlight: 0, queued: 0, refusedBusy: 1 });
  });

  it('keeps arrival order: a newcomer does not take a slot freed for a waiter', async () => {
    const gate = new ConcurrencyGate(1, 5);
    const never = new AbortController().signal;
    const order: string[] = [];
    const first = deferred();
    const running = gate.run(() => first.promise, never);
    const waiting = gate.run(() => {
      order.push('waiter');
      return Promise.resolve();
    }, never);
    first.resolve();
    const newcomer = gate.run(() => {
      order.push('newcomer');
      return Promise.resolve();
    }, never);
    await Promise.all([running, waiting, newcomer]);
    expect(order).toEqual(['waiter', 'newcomer']);
  });

  it('drops a waiter whose signal aborts, without running it', async () => {
    const gate = new ConcurrencyGate(1, 5);
    const never = new AbortController().signal;
    const hold = deferred();
    const running = gate.run(() => hold.promise, never);
    const impatient = new AbortController();
    let ran = false;
    const dropped = gate.run(() => {
      ran = true;
      return Promise.resolve();
    }, impatient.signal);
    expect(gate.load.queued).toBe(1);
    impatient.abort(new Error('gave up'));
    await expect(dropped).rejects.toThrow('gave up');
    expect(gate.load).toEqual({ inFlight: 1, queued: 0, refusedBusy: 0 });
    hold.resolve();
    await running;
    expect(ran).toBe(false);
    expect(gate.load.inFlight).toBe(0);
  });

  it('refuses a caller whose signal has already aborted, without queueing it', async () => {
    const gate = new ConcurrencyGate(1, 1);
    const aborted = AbortSignal.abort(new Error('too late'));
    await expect(gate.run(() => Promise.resolve(), aborted)).rejects.toThrow('too late');
    expect(gate.load).toEqual({ inFlight: 0, queued: 0, refusedBusy: 0 });
  });

  it('with no queue, refuses as soon as every slot is taken', async () => {
    const gate = new ConcurrencyGate(1, 0);
    const never = new AbortController().signal;
    const hold = deferred();
    const running = gate.run(() => hold.promise, never);
    await expect(gate.run(() => Promise.resolve(), never)).rejects.toBeInstanceOf(GateFullError);
    hold.resolve();
    await running;
    await expect(gate.run(() => Promise.resolve(), never)).resolves.toBeUndefined();
  });
});
