import { createHash, randomBytes } from 'node:crypto';
import { accountDb, accountModb, encodeRoutingWord } from '../core';

/**
 * Builders of Kazoo 4.x messages as Kazoo publishes them: the exchange, the routing key its
 * `kapi_*` module gives the message, and the JSON body with Kazoo's own headers. The demo's
 * simulator publishes them; the shapes follow the fixtures in `shared/kazoo/fixtures/` (02 call,
 * 05 conference, 08 fax status, 11 document) and the presence fixtures of `test/fixtures/`.
 */

/** A JSON body as Kazoo publishes it (`Header-Case` keys). */
export type KazooJson = Record<string, unknown>;

/** The topic exchanges Kazoo publishes these events on. */
export const KAZOO_EXCHANGES = {
  call: 'callevt',
  conference: 'conference',
  fax: 'faxes',
  configuration: 'configuration',
  presence: 'presence',
} as const;
export type KazooExchange = (typeof KAZOO_EXCHANGES)[keyof typeof KAZOO_EXCHANGES];

/** One message, ready to publish. */
export interface KazooDelivery {
  readonly exchange: KazooExchange;
  readonly routingKey: string;
  readonly body: KazooJson;
}

/** Seconds from 0000-01-01 to 1970-01-01: Kazoo's timestamps are Gregorian seconds. */
export const GREGORIAN_UNIX_OFFSET_S = 62_167_219_200;

export function gregorianSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000) + GREGORIAN_UNIX_OFFSET_S;
}

/** The tenant of an event, as Crossbar's account document describes it. */
export interface KazooAccount {
  /** 32 lower-case hex characters. */
  readonly id: string;
  readonly name: string;
  /** The account's SIP realm: presence messages name it instead of the account. */
  readonly realm: string;
}

/** A SIP device of the account and the user who owns it. */
export interface KazooDevice {
  /** The device document (`Authorizing-ID`). */
  readonly id: string;
  /** The user document (`Owner-ID`). */
  readonly ownerId: string;
  /** SIP username the device registers with. */
  readonly username: string;
  /** The owner's extension, which is also the device's presence id. */
  readonly extension: string;
  /** The owner's name, shown as caller id. */
  readonly name: string;
  readonly userAgent: string;
  /** The address the device registers from (`X-AUTH-IP`). */
  readonly ip: string;
}

/** The Kazoo cluster the demo pretends to be: node names and the media server. */
const PLATFORM = {
  ecallmgr: 'ecallmgr@apps1.demo.kazoo',
  kazooApps: 'kazoo_apps@apps1.demo.kazoo',
  callflow: 'callflow@apps1.demo.kazoo',
  crossbar: 'crossbar@api1.demo.kazoo',
  mediaServer: 'fs1.demo.kazoo',
  switchUri: 'sip:10.26.0.81:11000',
  switchUrl: 'sip:mod_sofia@10.26.0.81:11000',
} as const;

/** `kz_binary:rand_hex(16)`: what `kz_api` puts in `Msg-ID`. */
function msgId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * ecallmgr's `Msg-ID` for call and conference events: FreeSWITCH's `Event-Date-Timestamp`, in
 * microseconds. It is not an identity: events of other legs, calls and families taken in the
 * same instant share it (fixtures call/01 CHANNEL_ANSWER and conference/07 do).
 */
function switchTimestampId(at: Date): string {
  return String(at.getTime() * 1000);
}

// --- call events (`callevt`, kapi_call) -------------------------------------------------------

/** The call events the simulator walks a call through. */
export type CallLifecycleEvent = 'CHANNEL_CREATE' | 'CHANNEL_ANSWER' | 'CHANNEL_DESTROY';

/** One A-leg placed by a device of the account (inbound to the switch, as the fixtures show). */
export interface KazooCall {
  readonly account: KazooAccount;
  /** The SIP Call-ID, as the device chose it (`abc@10.0.0.1` forms are encoded in the key). */
  readonly callId: string;
  readonly device: KazooDevice;
  /** Extension, feature code (`*97`) or number the device dialed. */
  readonly dialed: string;
  readonly fromTag: string;
  readonly toTag: string;
  readonly createdAt: Date;
  /** Set once the call is answered; a DESTROY without it is a call that never connected. */
  readonly answeredAt?: Date;
  /** `NORMAL_CLEARING` by default on DESTROY. */
  readonly hangupCause?: string;
}

/**
 * A call event as ecallmgr publishes it on `callevt`, keyed `call.<EVENT>.<encoded Call-ID>`
 * (`kapi_call:event_routing_key/2`). The tenant is `Custom-Channel-Vars.Account-ID`.
 */
export function callEvent(
  event: CallLifecycleEvent,
  call: KazooCall,
  at: Date = new Date(),
): KazooDelivery {
  const { account, device } = call;
  const to = `${call.dialed}@${account.realm}`;
  const channelVars: KazooJson = {
    'Account-ID': account.id,
    'Account-Name': account.name,
    'Account-Realm': account.realm,
    'Authorizing-ID': device.id,
    'Authorizing-Type': 'device',
    'Owner-ID': device.ownerId,
    Realm: account.realm,
    'Register-Overwrite-Notify': 'false',
    'Suppress-Unregister-Notifications': 'false',
    Username: device.username,
  };
  if (event !== 'CHANNEL_CREATE') {
    // Set by the callflow once it has taken the call (fixture 01 ANSWER/DESTROY).
    Object.assign(channelVars, {
      'Application-Name': 'callflow',
      'Application-Node': PLATFORM.kazooApps,
      'Bridge-ID': call.callId,
      'Caller-Privacy-Name': 'false',
      'Caller-Privacy-Number': 'false',
      'Channel-Authorized': 'true',
      'Ecallmgr-Node': PLATFORM.ecallmgr,
      'Fetch-ID': fetchIdOf(call.callId),
      'Global-Resource': 'false',
    });
  }
  const body: KazooJson = {
    'App-Name': 'ecallmgr',
    'App-Version': '4.3.0',
    'Call-Direction': 'inbound',
    'Call-ID': call.callId,
    // Before the callflow runs, the switch only knows the SIP username (fixture 02).
    'Caller-ID-Name': event === 'CHANNEL_CREATE' ? device.username : device.name,
    'Caller-ID-Number': event === 'CHANNEL_CREATE' ? device.username : device.extension,
    'Custom-Channel-Vars': channelVars,
    'Custom-SIP-Headers': { 'X-AUTH-IP': device.ip },
    Disposition: DISPOSITIONS[event],
    'Event-Category': 'call_event',
    'Event-Name': event,
    From: `${device.extension}@${account.realm}`,
    'From-Tag': call.fromTag,
    'From-Uri': `${device.username}@${account.realm}`,
    'Media-Server': PLATFORM.mediaServer,
    'Msg-ID': switchTimestampId(at),
    Node: PLATFORM.ecallmgr,
    'Presence-ID': `${device.extension}@${account.realm}`,
    Request: to,
    'Switch-URI': PLATFORM.switchUri,
    'Switch-URL': PLATFORM.switchUrl,
    Timestamp: gregorianSeconds(at),
    To: to,
    'To-Uri': to,
  };
  if (event === 'CHANNEL_DESTROY') {
    const seconds = (from: Date, until: Date): number =>
      Math.max(0, Math.round((until.getTime() - from.getTime()) / 1000));
    const answeredAt = call.answeredAt;
    Object.assign(body, {
      'Billing-Seconds': String(answeredAt ? seconds(answeredAt, at) : 0),
      'Duration-Seconds': String(seconds(call.createdAt, at)),
      'Hangup-Cause': call.hangupCause ?? 'NORMAL_CLEARING',
      'Remote-SDP': remoteSdp(device.ip),
      'Ringing-Seconds': String(seconds(call.createdAt, answeredAt ?? at)),
      'To-Tag': call.toTag,
      'User-Agent': device.userAgent,
    });
  }
  return {
    exchange: KAZOO_EXCHANGES.call,
    routingKey: `call.${event}.${encodeRoutingWord(call.callId)}`,
    body,
  };
}

const DISPOSITIONS: Record<CallLifecycleEvent, string> = {
  CHANNEL_CREATE: 'DELAYED NEGOTIATION',
  CHANNEL_ANSWER: 'EARLY MEDIA',
  CHANNEL_DESTROY: 'ANSWER',
};

/** ecallmgr's fetch id for the call's dialplan lookup: a UUID, stable for one call. */
function fetchIdOf(callId: string): string {
  const hex = createHash('md5').update(callId).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function remoteSdp(ip: string): string {
  return [
    'v=0',
    `o=- 7274649247909803147 2 IN IP4 ${ip}`,
    's=-',
    't=0 0',
    'm=audio 49382 RTP/AVP 0 8 101',
    `c=IN IP4 ${ip}`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    '',
  ].join('\r\n');
}

// --- conference events (`conference`, kapi_conference) ----------------------------------------

/** The conference events the simulator publishes (of `kapi_conference:events/0`). */
export type ConferenceMemberEvent = 'add-member' | 'del-member' | 'start-talking' | 'stop-talking';

/** One caller in a conference. */
export interface KazooConferenceMember {
  readonly account: KazooAccount;
  readonly conferenceId: string;
  /** The FreeSWITCH conference instance (a UUID). */
  readonly instanceId: string;
  readonly callId: string;
  /** FreeSWITCH's member id, which Kazoo also reports as `Participant-ID`. */
  readonly participantId: number;
  readonly device: KazooDevice;
  readonly moderator: boolean;
}

/**
 * A 4.x conference event as ecallmgr publishes it (fixture 05), keyed
 * `conference.event.<Event>.<Account-ID>.<Conference-ID>.<encoded Call-ID>`
 * (`kapi_conference:event_key/1`): the call-id is encoded, the conference id is not.
 */
export function conferenceEvent(
  event: ConferenceMemberEvent,
  member: KazooConferenceMember,
  at: Date = new Date(),
): KazooDelivery {
  const { account, device } = member;
  const presenceId = `${device.extension}@${account.realm}`;
  const body: KazooJson = {
    'Account-ID': account.id,
    'Call-ID': member.callId,
    'Caller-ID-Name': device.name,
    'Caller-ID-Number': device.extension,
    'Channel-Presence-ID': presenceId,
    'Conference-Channel-Vars': {
      'Is-Moderator': member.moderator,
      Floor: event === 'start-talking',
      Video: false,
      Speak: true,
      Hear: true,
      Talking: event === 'start-talking',
      'Mute-Detect': false,
      'Energy-Level': 20,
      'Member-ID': member.participantId,
      'Member-Type': member.moderator ? 'moderator' : 'member',
    },
    'Conference-ID': member.conferenceId,
    'Custom-Channel-Vars': {
      'Account-ID': account.id,
      'Authorizing-ID': device.id,
      'Authorizing-Type': 'device',
      'Owner-ID': device.ownerId,
      'Presence-ID': presenceId,
      Realm: account.realm,
      Username: device.username,
    },
    Event: event,
    'Instance-ID': member.instanceId,
    'Participant-ID': member.participantId,
    'Event-Category': 'conference',
    'Event-Name': 'event',
    'App-Name': 'ecallmgr',
    'App-Version': '4.0.0',
    Node: PLATFORM.ecallmgr,
    'Msg-ID': switchTimestampId(at),
  };
  return {
    exchange: KAZOO_EXCHANGES.conference,
    routingKey: `conference.event.${event}.${account.id}.${member.conferenceId}.${encodeRoutingWord(member.callId)}`,
    body,
  };
}

// --- fax status (`faxes`, kapi_fax) ------------------------------------------------------------

/** `Fax-State` values (`fax.hrl`). */
export type FaxState = 'start' | 'prepare' | 'send' | 'receive' | 'end' | 'error';

/** An outgoing fax job. */
export interface KazooFaxJob {
  readonly account: KazooAccount;
  /** `YYYYMM-<32 hex>`: the job document, later moved to the MODB under the same id. */
  readonly jobId: string;
  readonly faxboxId: string;
}

export interface FaxStatusDetails {
  /** The page being sent; 0 until the first page is through. */
  readonly page?: number;
  /** FreeSWITCH's fax application data (`Fax-Info`), once the transmission has started. */
  readonly faxInfo?: KazooJson;
}

/**
 * A fax status as `fax_worker:send_status/4` publishes it (fixture 08), keyed
 * `fax.status.<Account-ID>.<encoded Job-ID>` (`kapi_fax:status_routing_key/2`).
 */
export function faxStatus(
  job: KazooFaxJob,
  state: FaxState,
  status: string,
  { page = 0, faxInfo }: FaxStatusDetails = {},
): KazooDelivery {
  const body: KazooJson = {
    'Job-ID': job.jobId,
    'FaxBox-ID': job.faxboxId,
    'Account-ID': job.account.id,
    Status: status,
    'Fax-State': state,
    ...(faxInfo === undefined ? {} : { 'Fax-Info': faxInfo }),
    Direction: 'outgoing',
    Page: page,
    'Event-Category': 'fax',
    'Event-Name': 'status',
    'App-Name': 'fax',
    'App-Version': '4.0.0',
    Node: PLATFORM.kazooApps,
    'Msg-ID': msgId(),
  };
  return {
    exchange: KAZOO_EXCHANGES.fax,
    routingKey: `fax.status.${job.account.id}.${encodeRoutingWord(job.jobId)}`,
    body,
  };
}

// --- document changes (`configuration`, kapi_conf) ---------------------------------------------

export type DocumentAction = 'doc_created' | 'doc_edited' | 'doc_deleted';

/** A document of the account (its database) or of one of its month databases. */
export interface KazooDocument {
  readonly account: KazooAccount;
  /** `pvt_type`: `user`, `device`, `callflow`, `fax`, … */
  readonly type: string;
  readonly id: string;
  /** The revision number the change produced (1 when created). */
  readonly revision: number;
  readonly createdAt: Date;
  /** Set for documents of a month database (MODB): the month they belong to. */
  readonly month?: Date;
}

/**
 * A document change as `kzs_publish:publish/3` sends it on `configuration` (fixture 11), keyed
 * `<action>.<encoded database>.<type>.<id>` (`kz_amqp_util:document_routing_key/4`).
 */
export function documentEvent(
  action: DocumentAction,
  document: KazooDocument,
  at: Date = new Date(),
): KazooDelivery {
  const { account } = document;
  const database = document.month ? accountModb(account.id, document.month) : accountDb(account.id);
  const revisionHash = createHash('md5')
    .update(`${document.id}/${document.revision}`)
    .digest('hex');
  const body: KazooJson = {
    ID: document.id,
    'Origin-Cache': 'kazoo_data_cache',
    Type: document.type,
    Database: database,
    Rev: `${document.revision}-${revisionHash}`,
    'Account-ID': account.id,
    // kzs_publish swaps them: `Date-Modified` carries the creation time and the other way round.
    'Date-Modified': gregorianSeconds(document.createdAt),
    'Date-Created': gregorianSeconds(at),
    'Is-Soft-Deleted': action === 'doc_deleted',
    'Event-Category': 'configuration',
    'Event-Name': action,
    'App-Name': 'datamgr',
    'App-Version': '4.0.0',
    Node: PLATFORM.crossbar,
    'Msg-ID': msgId(),
  };
  return {
    exchange: KAZOO_EXCHANGES.configuration,
    routingKey: `${action}.${database}.${document.type}.${document.id}`,
    body,
  };
}

// --- presence (`presence`, kapi_presence) ------------------------------------------------------

/** Dialog states (`kapi_presence` DIALOG_VALUES). */
export type DialogState = 'early' | 'confirmed' | 'terminated';

/** One SIP dialog as presence sees it: `from` calls `to`, both users of `account`'s realm. */
export interface KazooDialog {
  readonly account: KazooAccount;
  readonly callId: string;
  readonly fromUser: string;
  readonly toUser: string;
  readonly fromTag: string;
  /** Empty until the far end answers. */
  readonly toTag: string;
  /** The other leg of the call, which presence updates name as `Target-Call-ID`. */
  readonly targetCallId?: string;
}

/**
 * A dialog update (`Event-Name: dialog_update`) about the caller's presence id, keyed
 * `dialog.<encoded realm>.<encoded Call-ID>` (`kapi_presence:dialog_routing_key/2`).
 */
export function dialogUpdate(dialog: KazooDialog, state: DialogState): KazooDelivery {
  const { realm } = dialog.account;
  const body: KazooJson = {
    'App-Name': 'ecallmgr',
    'App-Version': '4.3.0',
    'Call-ID': dialog.callId,
    Direction: 'initiator',
    'Event-Category': 'presence',
    'Event-Name': 'dialog_update',
    'Event-Package': 'dialog',
    Expires: '1800',
    From: `${dialog.fromUser}@${realm}`,
    'From-Realm': realm,
    'From-Tag': dialog.fromTag,
    'From-URI': `sip:${dialog.fromUser}@${realm}`,
    'From-User': dialog.fromUser,
    'Msg-ID': msgId(),
    Node: PLATFORM.ecallmgr,
    'Presence-ID': `${dialog.fromUser}@${realm}`,
    'Server-ID': '',
    State: state,
    'Switch-URI': PLATFORM.switchUri,
    To: `${dialog.toUser}@${realm}`,
    'To-Realm': realm,
    'To-Tag': state === 'early' ? '' : dialog.toTag,
    'To-URI': `sip:${dialog.toUser}@${realm}`,
    'To-User': dialog.toUser,
  };
  return {
    exchange: KAZOO_EXCHANGES.presence,
    routingKey: `dialog.${encodeRoutingWord(realm)}.${encodeRoutingWord(dialog.callId)}`,
    body,
  };
}

/**
 * A presence update (`Event-Name: update`) about the callee's presence id, keyed
 * `update.<encoded realm>.<encoded Call-ID>` (`kapi_presence:update_routing_key/2`).
 */
export function presenceUpdate(dialog: KazooDialog, state: DialogState): KazooDelivery {
  const { realm } = dialog.account;
  const body: KazooJson = {
    'App-Name': 'ecallmgr',
    'App-Version': '4.3.0',
    'Call-Direction': 'inbound',
    'Call-ID': dialog.callId,
    'Event-Category': 'presence',
    'Event-Name': 'update',
    'Event-Package': 'dialog',
    From: `${dialog.fromUser}@${realm}`,
    'From-Realm': realm,
    'From-Tag': dialog.fromTag,
    'From-User': dialog.fromUser,
    'Msg-ID': msgId(),
    Node: PLATFORM.ecallmgr,
    'Presence-ID': `${dialog.toUser}@${realm}`,
    'Server-ID': '',
    State: state,
    'Switch-URI': PLATFORM.switchUri,
    ...(dialog.targetCallId === undefined ? {} : { 'Target-Call-ID': dialog.targetCallId }),
    To: `${dialog.toUser}@${realm}`,
    'To-Realm': realm,
    'To-Tag': state === 'early' ? '' : dialog.toTag,
    'To-User': dialog.toUser,
  };
  return {
    exchange: KAZOO_EXCHANGES.presence,
    routingKey: `update.${encodeRoutingWord(realm)}.${encodeRoutingWord(dialog.callId)}`,
    body,
  };
}

/** A voicemail box's counters. */
export interface MailboxCounts {
  readonly new: number;
  readonly saved: number;
}

/**
 * A message-waiting update (`Event-Name: mwi_update`) for `user@realm`, rewritten as
 * `kapi_presence:mwi_extended_update/1` does and keyed `mwi_updates.<encoded realm>.<encoded user>`.
 */
export function mwiUpdate(
  account: KazooAccount,
  user: string,
  counts: MailboxCounts,
): KazooDelivery {
  const { realm } = account;
  const to = `${user}@${realm}`;
  const body: KazooJson = {
    'App-Name': 'callflow',
    'App-Version': '4.3.0',
    // kapi_presence derives the Call-ID from `To`.
    'Call-ID': createHash('md5').update(to).digest('hex'),
    'Event-Category': 'presence',
    'Event-Name': 'mwi_update',
    From: `sip:${to}`,
    'From-Realm': realm,
    'From-User': user,
    'Message-Account': `sip:${to}`,
    'Messages-New': counts.new,
    'Messages-Saved': counts.saved,
    'Messages-Urgent': 0,
    'Messages-Urgent-Saved': 0,
    'Messages-Waiting': counts.new > 0 ? 'yes' : 'no',
    'Msg-ID': msgId(),
    Node: PLATFORM.callflow,
    'Presence-ID': to,
    'Server-ID': '',
    To: `sip:${to}`,
    'To-Realm': realm,
    'To-User': user,
  };
  return {
    exchange: KAZOO_EXCHANGES.presence,
    routingKey: `mwi_updates.${encodeRoutingWord(realm)}.${encodeRoutingWord(user)}`,
    body,
  };
}
