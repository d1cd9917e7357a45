import type { KazooMessage } from '../families/event-family';

/**
 * Kazoo 4.x's `kz_json:normalize_jobj/1`: every key, recursively, lower-cased (ASCII and
 * Latin-1 capitals) with `-` turned into `_`, and `null` values dropped.
 */
export function normalizeKazooJson(message: KazooMessage): KazooMessage {
  return normalizeObject(message, undefined);
}

/**
 * What Kazoo 4.x clients receive as an event's `data`: `publicFields` then
 * `normalizeKazooJson`, in one pass and without copying the message first.
 */
export function kazooEventData(message: KazooMessage): KazooMessage {
  return normalizeObject(message, PRIVATE_HEADER_SET);
}

function normalizeValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeValue);
  if (typeof value !== 'object' || value === null) return value;
  return normalizeObject(value as KazooMessage, undefined);
}

function normalizeObject(value: KazooMessage, skip: ReadonlySet<string> | undefined): KazooMessage {
  const normalized: Record<string, unknown> = {};
  for (const key in value) {
    if (!Object.hasOwn(value, key) || skip?.has(key)) continue;
    const inner = value[key];
    if (inner === null || inner === undefined) continue;
    normalized[normalizeKey(key)] = normalizeValue(inner);
  }
  return normalized;
}

/**
 * Kazoo's headers are a small vocabulary, so normalized keys are remembered; the bound keeps
 * a stream of unusual keys (document bodies) from growing it for ever.
 */
const normalizedKeys = new Map<string, string>();
const MAX_REMEMBERED_KEYS = 10_000;

function normalizeKey(key: string): string {
  const known = normalizedKeys.get(key);
  if (known !== undefined) return known;
  const normalized = lowerKazooKey(key);
  if (normalizedKeys.size >= MAX_REMEMBERED_KEYS) normalizedKeys.clear();
  normalizedKeys.set(key, normalized);
  return normalized;
}

function lowerKazooKey(key: string): string {
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

const PRIVATE_HEADER_SET: ReadonlySet<string> = new Set(PRIVATE_HEADERS);

/** Kazoo 4.x's `kz_api:public_fields/1`: the message without its routing and node headers. */
export function publicFields(message: KazooMessage): KazooMessage {
  const copy: Record<string, unknown> = { ...message };
  for (const header of PRIVATE_HEADERS) delete copy[header];
  return copy;
}
