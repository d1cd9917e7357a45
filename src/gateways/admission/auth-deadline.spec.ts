import { loadEnvironment } from '../../config/environment';
import { AuthDeadlines } from './auth-deadline';

describe('AuthDeadlines', () => {
  let now = 0;
  let deadlines: AuthDeadlines;

  beforeEach(() => {
    now = 1_000_000;
    deadlines = new AuthDeadlines(loadEnvironment({ AUTH_DEADLINE_S: '30' }), () => now);
  });
  afterEach(() => deadlines.onApplicationShutdown());

  it('expires a watch once its deadline has passed, not before', () => {
    const expired: string[] = [];
    deadlines.watch(() => expired.push('a'));
    now += 10_000;
    deadlines.watch(() => expired.push('b'));
    now += 19_999;
    deadlines.sweep();
    expect(expired).toEqual([]);
    now += 1;
    deadlines.sweep();
    expect(expired).toEqual(['a']);
    now += 10_000;
    deadlines.sweep();
    expect(expired).toEqual(['a', 'b']);
    expect(deadlines.size).toBe(0);
  });

  it('never expires a cleared watch, and forgets it', () => {
    const expired: number[] = [];
    const watches = Array.from({ length: 1000 }, (_, i) => deadlines.watch(() => expired.push(i)));
    watches.forEach((watch, i) => i % 2 === 0 && watch.clear());
    expect(deadlines.size).toBe(500);
    now += 30_000;
    deadlines.sweep();
    expect(expired).toHaveLength(500);
    expect(expired.every((i) => i % 2 === 1)).toBe(true);
  });
});
