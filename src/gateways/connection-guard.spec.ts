import type { Logger } from '@nestjs/common';
import { EventStats } from '../core/events/event-stats';
import { isLogRecord, recordText } from '../logging/log-record';
import { ConnectionGuard } from './connection-guard';

interface FakeConnection {
  readonly name: string;
  closes: number;
}

describe('ConnectionGuard', () => {
  const setup = (close: (connection: FakeConnection) => void = (c) => (c.closes += 1)) => {
    const stats = new EventStats();
    const errors: string[] = [];
    const logger = {
      error: (line: unknown) => errors.push(isLogRecord(line) ? recordText(line) : String(line)),
    } as unknown as Logger;
    const guard = new ConnectionGuard<FakeConnection>(stats, logger, (c) => c.name, close);
    const failing: FakeConnection = { name: 'failing', closes: 0 };
    const bystander: FakeConnection = { name: 'bystander', closes: 0 };
    return { stats, errors, guard, failing, bystander };
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('closes only the connection whose handler throws, counts it and logs the stack once', async () => {
    const { stats, errors, guard, failing, bystander } = setup();
    guard.run(failing, () => {
      throw new Error('handler bug');
    });
    guard.run(bystander, () => Promise.resolve());
    await settle();
    expect(failing.closes).toBe(1);
    expect(bystander.closes).toBe(0);
    expect(stats.snapshot().internal_error_disconnects).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('session failing');
    expect(errors[0]).toContain('handler bug');
    expect(errors[0]).toContain('connection-guard.spec.ts');
  });

  it('catches rejections of async handlers, and counts a connection once however often it fails', async () => {
    const { stats, errors, guard, failing } = setup();
    for (let i = 0; i < 3; i++) guard.run(failing, () => Promise.reject(new Error(`async ${i}`)));
    await settle();
    expect(failing.closes).toBe(1);
    expect(stats.internalErrorDisconnects).toBe(1);
    expect(errors).toHaveLength(1);
  });

  it('never throws, not even when closing fails', async () => {
    const { stats, errors, guard, failing } = setup(() => {
      throw new Error('socket already gone');
    });
    expect(() =>
      guard.run(failing, () => {
        throw new Error('handler bug');
      }),
    ).not.toThrow();
    await settle();
    expect(stats.internalErrorDisconnects).toBe(1);
    expect(errors).toEqual([
      expect.stringContaining(
        'session failing: closed after an internal error: Error: handler bug',
      ),
      expect.stringContaining('closing failed: Error: socket already gone'),
    ]);
  });
});
