import type { OutboundEvent } from '../session';
import { LiveHold } from './live-hold';

type Match = { event: OutboundEvent };
const at = (position: string): Match[] => [{ event: { position } as OutboundEvent }];
const positionsOf = (sent: Match[][]): (string | undefined)[] =>
  sent.map((matches) => matches[0].event.position);

describe('LiveHold', () => {
  let sent: Match[][];
  let activity: boolean[];
  let hold: LiveHold<Match>;

  beforeEach(() => {
    sent = [];
    activity = [];
    hold = new LiveHold<Match>(
      (matches) => sent.push([...matches]),
      (active) => activity.push(active),
    );
  });

  it('lets live events through while idle', () => {
    expect(hold.intercept(at('e-2'))).toBe(false);
    expect(hold.active).toBe(false);
  });

  it('sends replayed events first, then held ones past the last replayed, none twice', () => {
    expect(hold.begin()).toBe(true);
    expect(hold.begin()).toBe(false);
    expect(hold.intercept(at('e-4'))).toBe(true);
    expect(hold.intercept(at('e-5'))).toBe(true);
    hold.replay(at('e-3'));
    hold.replay(at('e-4'));
    hold.release('e-4');
    expect(positionsOf(sent)).toEqual(['e-3', 'e-4', 'e-5']);
    // Live delivery is past the seam: the next event clears the hold.
    expect(hold.intercept(at('e-6'))).toBe(false);
    expect(activity).toEqual([true, false]);
  });

  it('drops live events at or before a position the replay reached ahead of live delivery', () => {
    hold.begin();
    hold.replay(at('e-7'));
    hold.release('e-7');
    expect(hold.intercept(at('e-6'))).toBe(true);
    expect(hold.intercept(at('e-7'))).toBe(true);
    expect(hold.intercept(at('e-8'))).toBe(false);
    expect(positionsOf(sent)).toEqual(['e-7']);
  });

  it('releases everything held when nothing was replayed', () => {
    hold.begin();
    hold.intercept(at('e-1'));
    hold.release(undefined);
    expect(positionsOf(sent)).toEqual(['e-1']);
    expect(hold.active).toBe(false);
    expect(activity).toEqual([true, false]);
  });
});
