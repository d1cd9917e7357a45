/**
 * A client that stops reading while it keeps sending keep-alives would otherwise make the node
 * hold every event meant for it. Past `MAX_OUTBOUND_BYTES` of unsent data a connection is
 * dropped as a slow consumer, with these codes on every protocol.
 */
export const SLOW_CONSUMER_CLOSE_CODE = 4008;
export const SLOW_CONSUMER_REASON = 'slow consumer';
/** Emitted as `error` to socket.io clients before they are dropped (best effort). */
export const SLOW_CONSUMER_ERROR = {
  code: 'slow_consumer',
  message: SLOW_CONSUMER_REASON,
} as const;

/** The cap and what a transport does when one of its sessions crosses it. */
export interface OutboundLimit<S> {
  readonly maxOutboundBytes: number;
  /** Called once, outside the delivery that crossed the limit, when a session is dropped. */
  readonly onSlowConsumer: (session: S) => void;
}

/** How often a dropped slow consumer's connection is checked for progress. */
export const DRAIN_CHECK_MS = 2000;
/** Checks after which a slow consumer still draining is cut anyway. */
export const MAX_DRAIN_CHECKS = 15;

export interface DrainProbe {
  /** Bytes still waiting to go out to the peer. */
  unsent(): number;
  closed(): boolean;
  /** Cuts the connection without a closing handshake. */
  terminate(): void;
}

/**
 * The closing frame or packet of a slow consumer waits behind everything it did not read, so a
 * peer that still does not read never gets it and the connection (with its buffers) would stay.
 * The connection is cut as soon as its unsent bytes stop falling between two checks; a peer
 * that reads again gets its close code.
 */
export function terminateUnlessDraining(
  probe: DrainProbe,
  intervalMs = DRAIN_CHECK_MS,
  maxChecks = MAX_DRAIN_CHECKS,
): void {
  let last = probe.unsent();
  let checks = 0;
  const timer = setInterval(() => {
    if (probe.closed()) {
      clearInterval(timer);
      return;
    }
    const unsent = probe.unsent();
    checks += 1;
    if (unsent < last && checks < maxChecks) {
      last = unsent;
      return;
    }
    clearInterval(timer);
    probe.terminate();
  }, intervalMs);
  timer.unref();
}

/** Something engine.io keeps in a socket's write buffer: a packet with string or binary data. */
export interface BufferedPacket {
  readonly data?: unknown;
}

/** Approximate size of a packet's data: string length, or byte length of binary data. */
export function packetSize(packet: BufferedPacket): number {
  const data = packet.data;
  if (typeof data === 'string') return data.length;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}

/**
 * A running total of the bytes in engine.io's write buffer, so that checking a socket after
 * each event costs the packets added since the last check rather than a walk of the whole
 * buffer. engine.io replaces the buffer with a new array whenever it hands it to the transport,
 * which the first packet's identity reveals.
 */
export class WriteBufferGauge {
  private first: BufferedPacket | undefined;
  private counted = 0;
  private bytes = 0;

  measure(buffer: readonly BufferedPacket[]): number {
    if (buffer.length === 0) {
      // Holds no packet of a buffer that is gone.
      this.first = undefined;
      this.counted = 0;
      this.bytes = 0;
      return 0;
    }
    if (buffer[0] !== this.first || buffer.length < this.counted) {
      this.first = buffer[0];
      this.counted = 0;
      this.bytes = 0;
    }
    while (this.counted < buffer.length) this.bytes += packetSize(buffer[this.counted++]);
    return this.bytes;
  }
}
