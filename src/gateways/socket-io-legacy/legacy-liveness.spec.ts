import { silenceEndsSession } from './legacy-liveness';

describe('silenceEndsSession', () => {
  const limits = { timeoutMs: 30_000, closeTimeoutMs: 10_000 };

  it('never ends a WebSocket session for silence, however long', () => {
    expect(silenceEndsSession('websocket', 0, limits)).toBe(false);
    expect(silenceEndsSession('websocket', 24 * 3600_000, limits)).toBe(false);
  });

  it('ends a polling session silent for longer than the timeout', () => {
    expect(silenceEndsSession('xhr-polling', 30_000, limits)).toBe(false);
    expect(silenceEndsSession('xhr-polling', 30_001, limits)).toBe(true);
  });

  it('ends a session that got no transport within the close timeout', () => {
    expect(silenceEndsSession(undefined, 10_000, limits)).toBe(false);
    expect(silenceEndsSession(undefined, 10_001, limits)).toBe(true);
  });
});
