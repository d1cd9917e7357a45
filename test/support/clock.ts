import { Clock } from '../../src/core/clock';

/** A clock a test moves by hand, to cross a month boundary without waiting for it. */
export class SettableClock extends Clock {
  private current: Date;

  constructor(start: string) {
    super();
    this.current = new Date(start);
  }

  set(iso: string): void {
    this.current = new Date(iso);
  }

  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }

  override now(): Date {
    return new Date(this.current);
  }
}
