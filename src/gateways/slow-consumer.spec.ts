import { WriteBufferGauge, packetSize, terminateUnlessDraining } from './slow-consumer';

describe('packetSize', () => {
  it('counts string length and binary bytes, nothing for packets without data', () => {
    expect(packetSize({ data: '42["x"]' })).toBe(7);
    expect(packetSize({ data: Buffer.alloc(10) })).toBe(10);
    expect(packetSize({ data: new ArrayBuffer(3) })).toBe(3);
    expect(packetSize({})).toBe(0);
  });
});

describe('WriteBufferGauge', () => {
  it('adds only the packets pushed since the last measure', () => {
    const gauge = new WriteBufferGauge();
    const buffer = [{ data: 'aaaa' }];
    expect(gauge.measure(buffer)).toBe(4);
    buffer.push({ data: 'bb' });
    expect(gauge.measure(buffer)).toBe(6);
    buffer.push({ data: 'c' }, { data: 'dddd' });
    expect(gauge.measure(buffer)).toBe(11);
  });

  it('starts over when engine.io hands the buffer to the transport', () => {
    const gauge = new WriteBufferGauge();
    const first = [{ data: 'aaaa' }, { data: 'bbbb' }];
    expect(gauge.measure(first)).toBe(8);
    expect(gauge.measure([])).toBe(0);
    // A new buffer already longer than the old one: recounted, not added to.
    const second = [{ data: 'x' }, { data: 'y' }, { data: 'z' }];
    expect(gauge.measure(second)).toBe(3);
    expect(gauge.measure([{ data: 'pq' }])).toBe(2);
  });
});

describe('terminateUnlessDraining', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function probe(amounts: number[]): { terminated: () => boolean; closed: { value: boolean } } {
    let terminated = false;
    const closed = { value: false };
    terminateUnlessDraining(
      {
        unsent: () => (amounts.length > 1 ? amounts.shift()! : amounts[0]),
        closed: () => closed.value,
        terminate: () => (terminated = true),
      },
      1000,
      5,
    );
    return { terminated: () => terminated, closed };
  }

  it('cuts a peer that does not read', () => {
    const p = probe([500, 500]);
    jest.advanceTimersByTime(1000);
    expect(p.terminated()).toBe(true);
  });

  it('leaves a peer that reads until it closes', () => {
    const p = probe([500, 400, 300, 200]);
    jest.advanceTimersByTime(3000);
    expect(p.terminated()).toBe(false);
    p.closed.value = true;
    jest.advanceTimersByTime(10000);
    expect(p.terminated()).toBe(false);
  });

  it('cuts a peer that reads too slowly to finish', () => {
    const p = probe([900, 800, 700, 600, 500, 400, 300, 200, 100]);
    jest.advanceTimersByTime(4000);
    expect(p.terminated()).toBe(false);
    jest.advanceTimersByTime(1000);
    expect(p.terminated()).toBe(true);
  });
});
