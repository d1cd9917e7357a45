/** The time source of the core; tests replace it to cross a month boundary without waiting. */
export class Clock {
  now(): Date {
    return new Date();
  }
}
