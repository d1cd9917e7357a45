import type { KazooMessage } from '../families/event-family';

/**
 * Kazoo 4.x's `kz_json:normalize_jobj/1`: every key, recursively, lower-cased (ASCII and
 * Latin-1 capitals) with `-` turned into `_`, and `null` values dropped.
 */
export function normalizeKazooJson(message: KazooMessage): KazooMessage {
  return normalizeValue(message) as KazooMessage;
}

function normalizeValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeValue);
  if (typeof value !== 'object' || value === null) return value;
  const normalized: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (inner === null || inner === undefined) continue;
    normalized[normalizeKey(key)] = normalizeValue(inner);
  }
  return normalized;
}

function normalizeKey(key: string): string {
  let out = '';
  for (const char of key) {
    const code = char.charCodeAt(0);
    if (char === '-') out += '_';
    // A-Z and the Latin-1 capitals À-Þ except × (U+00D7) lower-case by adding 32.
    else if ((code >= 0x41 && code <= 0x5a) || (code >= 0xc0 && code <= 0xde && code !== 0xd7)) {
      out += String.fromCharCode(code + 32);
    } else out += char;
  }
  return out;
}

/** Top-level headers Kazoo 4.x strips before showing a message to clients (`kz_api:public_fields/1`). */
export const PRIVATE_HEADERS = [
  'Access-Group',
  'Defer-Response',
  'Destination-Server',
  'Geo-Location',
  'System-Log-ID',
  'Node',
  'Server-Queue-ID',
  'Raw-Headers',
  'Server-ID',
  'Request-From-PID',
  'Reply-To-PID',
  'AMQP-Broker',
  'AMQP-Broker-Zone',
] as const;

/** Kazoo 4.x's `kz_api:public_fields/1`: the message without its routing and node headers. */
export function publicFields(message: KazooMessage): KazooMessage {
  const copy: Record<string, unknown> = { ...message };
  for (const header of PRIVATE_HEADERS) delete copy[header];
  return copy;
}
