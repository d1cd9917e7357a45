import { ReplayBusyError } from '../errors';
import { ReplaySlots } from './replay-slots';

describe('ReplaySlots', () => {
  it('lets `concurrency` replays run, queues the next in order and refuses past `maxWaiting`', async () => {
    const slots = new ReplaySlots(2, 1);
    await slots.acquire();
    await slots.acquire();
    let third = false;
    const waiting = slots.acquire().then(() => (third = true));
    await expect(slots.acquire()).rejects.toBeInstanceOf(ReplayBusyError);
    expect({ active: slots.active, queued: slots.queued }).toEqual({ active: 2, queued: 1 });
    slots.release();
    await waiting;
    expect(third).toBe(true);
    expect({ active: slots.active, queued: slots.queued }).toEqual({ active: 2, queued: 0 });
    slots.release();
    slots.release();
    expect(slots.active).toBe(0);
  });
});
