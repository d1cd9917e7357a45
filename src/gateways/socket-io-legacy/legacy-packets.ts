/**
 * socket.io 0.9 (protocol revision 1) packets: `type:id:endpoint:data`, with `id+` when the
 * sender wants its acknowledgement to carry data. Several packets in one HTTP body are framed
 * as `\ufffd<length>\ufffd<packet>`, lengths counted in UTF-16 code units as the 0.9 client does.
 */

export const PACKET_TYPES = [
  'disconnect',
  'connect',
  'heartbeat',
  'message',
  'json',
  'event',
  'ack',
  'error',
  'noop',
] as const;
export type PacketType = (typeof PACKET_TYPES)[number];

export interface LegacyPacket {
  readonly type: PacketType;
  /** Message id; with `ackWithData` the sender expects `6:::<id>+[args]` back. */
  readonly id?: string;
  readonly ackWithData?: boolean;
  readonly endpoint: string;
  readonly data: string;
}

const PACKET = /^([0-8]):([0-9]+)?(\+)?:([^:]*)?:?([\s\S]*)$/;
const FRAME = '\ufffd';

export function decodePacket(text: string): LegacyPacket | undefined {
  const match = PACKET.exec(text);
  if (!match) return undefined;
  const [, type, id, plus, endpoint = '', data = ''] = match;
  return {
    type: PACKET_TYPES[Number(type)],
    id: id || undefined,
    ackWithData: plus === '+',
    endpoint,
    data,
  };
}

/** Splits an HTTP body into packets: one bare packet, or a run of framed ones. */
export function decodePayload(body: string): string[] {
  if (!body.startsWith(FRAME)) return [body];
  const packets: string[] = [];
  let at = 0;
  while (at < body.length) {
    if (body[at] !== FRAME) return [];
    const end = body.indexOf(FRAME, at + 1);
    if (end < 0) return [];
    const length = Number(body.slice(at + 1, end));
    if (!Number.isInteger(length) || length < 0 || end + 1 + length > body.length) return [];
    packets.push(body.slice(end + 1, end + 1 + length));
    at = end + 1 + length;
  }
  return packets;
}

export function encodePayload(packets: readonly string[]): string {
  if (packets.length === 1) return packets[0];
  return packets.map((packet) => `${FRAME}${packet.length}${FRAME}${packet}`).join('');
}

export const CONNECT = '1::';
export const HEARTBEAT = '2::';
export const NOOP = '8::';
export const DISCONNECT = '0::';

/** `5:::{"name":…,"args":…}`. Kazoo 3.x sent `args` as the bare object (spec §2.1). */
export function eventPacket(name: string, payload: unknown): string {
  return `5:::${JSON.stringify({ name, args: payload })}`;
}

/** The acknowledgement of message `id`, with data when the client asked for it. */
export function ackPacket(id: string, args?: readonly unknown[]): string {
  return args === undefined ? `6:::${id}` : `6:::${id}+${JSON.stringify(args)}`;
}

/** 0.9's error packet: reason and advice are indexes into its fixed lists. */
export const NOT_HANDSHAKEN = '7:::1+0';
export const TRANSPORT_NOT_SUPPORTED = '7:::0+0';
