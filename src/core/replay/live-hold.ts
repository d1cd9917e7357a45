import type { EventMatch } from '../session';

/** What the core needs of a session's hold to run a replay into it. */
export interface ReplayHold {
  /** Starts holding live events; false when a replay already holds them. */
  begin(): boolean;
  /** Sends replayed matches at once. */
  replay(matches: readonly EventMatch[]): void;
  /** Ends the replay; live events at or before `lastReplayed` are not sent. */
  release(lastReplayed: string | undefined): void;
}

/**
 * Holds a session's live events while a replay of the same log runs, so that the client gets
 * the replayed events first and the live ones after, with no gap and no duplicate at the seam:
 * live events are buffered from before the replay starts, and on release only those past the
 * last replayed position go out. Positions of one log sort as strings in log order.
 *
 * Idle (the normal state) costs a boolean test per delivery.
 */
export class LiveHold<M extends Pick<EventMatch, 'event'> = EventMatch> {
  private held: (readonly M[])[] = [];
  private holding = false;
  /** After a release: live events at or before it were replayed already. */
  private floor: string | undefined;

  constructor(
    /** Sends matches to the client now. */
    private readonly emit: (matches: readonly M[]) => void,
    /** Told when the hold starts or stops intercepting (a broadcast must then skip the session). */
    private readonly onActiveChange: (active: boolean) => void = () => undefined,
  ) {}

  /** True while live deliveries must go through `intercept` rather than a broadcast. */
  get active(): boolean {
    return this.holding || this.floor !== undefined;
  }

  /** Starts holding live events; returns false when a replay already holds them. */
  begin(): boolean {
    if (this.holding) return false;
    const wasActive = this.active;
    this.holding = true;
    this.floor = undefined;
    if (!wasActive) this.onActiveChange(true);
    return true;
  }

  /** Sends replayed matches at once (they come before anything held). */
  replay(matches: readonly M[]): void {
    this.emit(matches);
  }

  /**
   * Live matches the session should not send now: held while replaying, dropped when at or
   * before the last replayed position. False means "send as usual".
   */
  intercept(matches: readonly M[]): boolean {
    if (this.holding) {
      this.held.push(matches);
      return true;
    }
    if (this.floor === undefined) return false;
    const position = matches[0]?.event.position;
    if (position !== undefined && position <= this.floor) return true;
    // Live delivery is past the replay: back to the plain path.
    this.floor = undefined;
    this.onActiveChange(false);
    return false;
  }

  /**
   * Ends the replay: held events past `lastReplayed` go out in order, and live events at or
   * before it are dropped until delivery is past it.
   */
  release(lastReplayed: string | undefined): void {
    if (!this.holding) return;
    const held = this.held;
    this.held = [];
    this.holding = false;
    let floor = lastReplayed;
    for (const matches of held) {
      const position = matches[0]?.event.position;
      if (floor !== undefined && position !== undefined && position <= floor) continue;
      this.emit(matches);
      // Live delivery is past the replay: later live events are all new.
      floor = undefined;
    }
    this.floor = floor;
    if (floor === undefined) this.onActiveChange(false);
  }

  /** Live events held now (metrics, tests). */
  get heldCount(): number {
    return this.held.length;
  }
}
