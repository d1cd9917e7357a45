// What the console knows about Kazoo event payloads: family, account and a one-line summary.
// Payloads come raw (Kazoo 3.x socket.io: "Call-ID", "Custom-Channel-Vars") or normalized
// (Kazoo 4.x WebSocket: "call_id", "custom_channel_vars"); every lookup accepts both.

export const CALL_EVENTS = [
  'CHANNEL_CREATE',
  'CHANNEL_ANSWER',
  'CHANNEL_DESTROY',
  'CHANNEL_HOLD',
  'CHANNEL_UNHOLD',
  'CHANNEL_BRIDGE',
  'PARK_PARKED',
  'PARK_RETRIEVED',
  'PARK_ABANDONED',
];

const DOC_ACTIONS = ['doc_created', 'doc_edited', 'doc_deleted'];
const DOC_TYPES = [
  'account',
  'callflow',
  'device',
  'faxbox',
  'media',
  'user',
  'vmbox',
  'fax',
  'mailbox_message',
  'call_recording',
];

/** Every event name a Kazoo 3.x (socket.io 0.9) server emits for the families Blackhole serves. */
export const KAZOO3_EVENTS = [
  ...CALL_EVENTS,
  'participants_event',
  'fax.status',
  ...DOC_ACTIONS.flatMap((action) => DOC_TYPES.map((type) => `${action}_${type}`)),
];

/** Server-sent failures, on both socket.io generations. */
export const ERROR_EVENTS = ['auth_failure', 'error'];

function normalizeKey(key) {
  return key.toLowerCase().replace(/-/g, '_');
}

/** `obj[key]`, trying Kazoo 3.x's spelling ("Call-ID") then Kazoo 4.x's ("call_id"). */
export function field(obj, key) {
  if (obj === null || typeof obj !== 'object') return undefined;
  if (Object.prototype.hasOwnProperty.call(obj, key)) return obj[key];
  const alt = normalizeKey(key);
  return Object.prototype.hasOwnProperty.call(obj, alt) ? obj[alt] : undefined;
}

/** The first of `keys` that holds a non-empty scalar, as a string. */
function firstOf(obj, ...keys) {
  for (const key of keys) {
    const value = field(obj, key);
    if (typeof value === 'string' && value !== '') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  }
  return undefined;
}

/** The user part of a SIP address ("356@realm" → "356"). */
function userPart(address) {
  return address ? address.split('@')[0] : undefined;
}

export function familyOf(name, payload, binding) {
  if (binding) return binding.split('.')[0];
  if (CALL_EVENTS.includes(name)) return 'call';
  if (name === 'participants_event' || name.startsWith('conference')) return 'conference';
  if (name === 'fax.status' || name.endsWith('_fax')) return 'fax';
  if (DOC_ACTIONS.some((action) => name.startsWith(action))) return 'object';
  if (['dialog_update', 'update', 'mwi_update'].includes(name)) return 'presence';
  const category = firstOf(payload, 'Event-Category');
  if (category === 'call_event') return 'call';
  return category || 'other';
}

/** The account an event belongs to, when its payload says so. */
export function accountOf(payload) {
  const vars = field(payload, 'Custom-Channel-Vars');
  return firstOf(vars, 'Account-ID') || firstOf(payload, 'Account-ID');
}

function callSummary(payload) {
  const parts = [];
  const direction = firstOf(payload, 'Call-Direction');
  if (direction) parts.push(direction);
  const callerName = firstOf(payload, 'Caller-ID-Name');
  const callerNumber = firstOf(payload, 'Caller-ID-Number');
  if (callerName || callerNumber) {
    const caller =
      callerName && callerNumber && callerName !== callerNumber
        ? `${callerName} <${callerNumber}>`
        : callerName || callerNumber;
    const callee =
      firstOf(payload, 'Callee-ID-Number', 'Callee-ID-Name') ||
      userPart(firstOf(payload, 'To', 'Request'));
    parts.push(callee ? `${caller} → ${callee}` : caller);
  }
  const cause = firstOf(payload, 'Hangup-Cause');
  if (cause) parts.push(cause);
  const callId = firstOf(payload, 'Call-ID');
  if (callId) parts.push(`call-id ${callId}`);
  return parts.join(' · ');
}

function conferenceSummary(payload) {
  const parts = [];
  const conference = firstOf(payload, 'Conference-ID', 'Conference-Name');
  if (conference) parts.push(`conference ${conference}`);
  const event = firstOf(payload, 'Event');
  if (event) parts.push(event);
  const participants = field(payload, 'Participants');
  if (Array.isArray(participants)) {
    parts.push(`${participants.length} participant${participants.length === 1 ? '' : 's'}`);
  }
  const callId = firstOf(payload, 'Call-ID');
  if (callId) parts.push(`call-id ${callId}`);
  return parts.join(' · ');
}

function faxSummary(payload) {
  const parts = [];
  const status = firstOf(payload, 'Status', 'Fax-State');
  if (status) parts.push(status);
  const direction = firstOf(payload, 'Direction');
  if (direction) parts.push(direction);
  const page = firstOf(payload, 'Page');
  if (page) parts.push(`page ${page}`);
  const job = firstOf(payload, 'Job-ID', 'Fax-ID', 'ID');
  if (job) parts.push(`job ${job}`);
  return parts.join(' · ');
}

function objectSummary(payload) {
  const type = firstOf(payload, 'Type');
  const id = firstOf(payload, 'ID');
  return [type, id].filter(Boolean).join(' ');
}

function presenceSummary(payload) {
  const parts = [];
  const state = firstOf(payload, 'State');
  if (state) parts.push(state);
  const from = userPart(firstOf(payload, 'From', 'Presence-ID'));
  const to = userPart(firstOf(payload, 'To'));
  if (from || to) parts.push(`${from || '?'} → ${to || '?'}`);
  const messages = firstOf(payload, 'Messages-New');
  if (messages) parts.push(`${messages} new`);
  const callId = firstOf(payload, 'Call-ID');
  if (callId) parts.push(`call-id ${callId}`);
  return parts.join(' · ');
}

/** A one-line, human summary of an event: who called whom, which fax, which document. */
export function summarize(family, payload) {
  if (payload === null || typeof payload !== 'object') {
    return payload === undefined ? '' : String(payload);
  }
  switch (family) {
    case 'call':
      return callSummary(payload);
    case 'conference':
      return conferenceSummary(payload);
    case 'fax':
      return faxSummary(payload);
    case 'object':
      return objectSummary(payload);
    case 'presence':
      return presenceSummary(payload);
    default:
      return firstOf(payload, 'Event-Name', 'Msg-ID') || '';
  }
}
