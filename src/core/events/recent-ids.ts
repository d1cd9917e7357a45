/**
 * The last few message ids one session was sent. Two families can consume the same Kazoo
 * message from their own queues (a fax document is both `fax.object.*` and `object.*.fax`);
 * remembering `Msg-ID`s lets a session still get it once.
 */
export class RecentIds {
  private readonly ring: (string | undefined)[];
  private readonly present = new Set<string>();
  private next = 0;

  constructor(capacity = 64) {
    this.ring = new Array<string | undefined>(capacity);
  }

  /** Records `id`; false when it was already among the recent ones. */
  add(id: string): boolean {
    if (this.present.has(id)) return false;
    const evicted = this.ring[this.next];
    if (evicted !== undefined) this.present.delete(evicted);
    this.ring[this.next] = id;
    this.present.add(id);
    this.next = (this.next + 1) % this.ring.length;
    return true;
  }
}
