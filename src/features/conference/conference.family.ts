import { Injectable } from '@nestjs/common';
import { ExchangeSubscription } from '../../amqp/family-subscription';
import {
  textField,
  channelVarsAccountId,
  accountWord,
  bindingId,
  EventFamilyProvider,
  InvalidBindingError,
  invalidBindingFormat,
  isAccountId,
  type BindingContext,
  type BrokerKey,
  type Delivery,
  type EventFamily,
  type FamilyBinding,
  type FamilyEvent,
  type KazooMessage,
} from '../../core';

export const CONFERENCE_EXCHANGE = 'conference';

/** Kazoo 4.x's `Event-Name` for every conference event; the real type is in `Event`. */
export const CONFERENCE_EVENT_NAME = 'event';

/** What Kazoo 3.x socket.io clients listen for (design §1.1). */
export const LEGACY_CONFERENCE_EVENT_NAME = 'participants_event';

/** AMQP short strings, routing keys included, hold at most 255 bytes. */
const MAX_ROUTING_KEY_BYTES = 255;

/**
 * The conference events Kazoo 4.3 lets a client name (`kapi_conference:events()`), as they
 * appear in the `Event` field and the third word of the routing key.
 */
export const CONFERENCE_EVENTS = [
  'conference-create',
  'conference-destroy',
  'lock',
  'unlock',
  'add-member',
  'del-member',
  'stop-talking',
  'start-talking',
  'mute-member',
  'unmute-member',
  'deaf-member',
  'undeaf-member',
] as const;
export type ConferenceEventType = (typeof CONFERENCE_EVENTS)[number];

const isConferenceEvent = (word: string): word is ConferenceEventType =>
  (CONFERENCE_EVENTS as readonly string[]).includes(word);

/** A parsed conference binding; keys are built from its parts. */
interface ConferenceBinding extends FamilyBinding {
  /** As the client wrote it (Kazoo never encodes conference ids), or `*`. */
  readonly conferenceId: string;
  /** Encoded as Kazoo publishes it, or `*`. */
  readonly callId: string;
  /** The third word of Kazoo's key: one event (4.3's per-event form), or `*`. */
  readonly event: ConferenceEventType | '*';
}

/**
 * Conference events (`bh_conference`): client bindings
 * - `conference.event.<CONF_ID|*>` and `conference.event.<CONF_ID|*>.<CALL_ID|*>` (Kazoo master's
 *   grammar; the call-id may contain dots),
 * - `conference.event.<CONF_ID|*>.*.<EVENT|*>` (Kazoo 4.3's per-event form, which monster-ui
 *   4.3's conference viewer subscribes as `conference.event.<C>.*.*`),
 *
 * consumed from the `conference` exchange where Kazoo 4.x publishes
 * `conference.event.<Event>.<AccountId>.<ConferenceId>.<encoded CallId>`.
 *
 * The two grammars share a shape: `conference.event.<C>.*.<E>` could be read as master's form
 * with the call-id `*.<E>`. No call-id is a `*` word followed by more words, and a wildcard
 * inside a call-id is refused anyway, so exactly five words with `*` as the fourth are 4.3's form.
 *
 * Unlike the call family, the account is part of the broker key
 * (`conference.event.<EVENT|*>.<ACCOUNT>.<CONF_ID|*>.*`), so a node only receives the conferences
 * of the accounts its clients watch. `conference.command.<ConfId>` is deliberately not offered:
 * Kazoo's command keys carry no account, so anyone could watch any tenant's conference (W17).
 */
@Injectable()
@EventFamilyProvider({ prefix: 'conference' })
export class ConferenceFamily implements EventFamily<ConferenceBinding> {
  readonly availableBindings = [
    'conference.event.{CONFERENCE_ID}',
    'conference.event.{CONFERENCE_ID}.{CALL_ID}',
    'conference.event.{CONFERENCE_ID}.*.{EVENT}',
  ];

  parseBinding(binding: string): ConferenceBinding {
    const parsed = parseEventBinding(binding);
    if (!fitsRoutingKey(parsed.event, parsed.conferenceId)) {
      throw invalidBindingFormat('conference', binding);
    }
    return parsed;
  }

  /**
   * One key per account, event word and conference; the call-id is left to the pattern so that
   * every binding on a conference shares the key. A superduper admin's `ALL_ACCOUNTS` puts `*`
   * in the account word.
   */
  brokerKeys(binding: ConferenceBinding, context: BindingContext): BrokerKey[] {
    return [
      {
        exchange: CONFERENCE_EXCHANGE,
        routingKey: conferenceBrokerKey(
          binding.event,
          accountWord(context.accountId),
          binding.conferenceId,
        ),
      },
    ];
  }

  /**
   * What Kazoo shows as `subscription_key`: 4.3's `conference.event.<EVENT|*>.<ACCOUNT>.<C>.*`
   * for the per-event form, master's `conference.event.*.<ACCOUNT>.<C>.<CALL_ID>` otherwise (with
   * the call-id encoded, as it is matched).
   */
  subscriptionKey(binding: ConferenceBinding, context: BindingContext): string {
    const account = accountWord(context.accountId);
    return `conference.event.${binding.event}.${account}.${binding.conferenceId}.${binding.callId}`;
  }

  @ExchangeSubscription(CONFERENCE_EXCHANGE)
  describe(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined {
    if (message['Event-Name'] !== CONFERENCE_EVENT_NAME) return undefined;
    const words = delivery.routingKey.split('.');
    // 3.x's `conference.event.<ConfId>` carries no account (W2), and a conference id with a dot
    // makes the key unreadable; only the 4.x shape can be told apart by account.
    if (words.length !== 6 || words[0] !== 'conference' || words[1] !== 'event') return undefined;
    return {
      accountId: accountOf(message, words[3]),
      key: delivery.routingKey,
      name: CONFERENCE_EVENT_NAME,
      payload: message,
      legacyName: LEGACY_CONFERENCE_EVENT_NAME,
      // 3.x sent conference events as Kazoo published them, without normalizing the keys.
      legacyPayload: message,
    };
  }
}

/** Reads the two grammars (see `ConferenceFamily`); the key length is checked by the caller. */
function parseEventBinding(binding: string): ConferenceBinding {
  const words = binding.split('.');
  const [, kind, conferenceId, ...rest] = words;
  if (
    kind !== 'event' ||
    conferenceId === undefined ||
    !isConferenceWord(conferenceId) ||
    binding.includes('#')
  ) {
    throw invalidBindingFormat('conference', binding);
  }
  if (words.length === 5 && words[3] === '*') {
    const event = words[4];
    if (event === '') throw invalidBindingFormat('conference', binding);
    if (event !== '*' && !isConferenceEvent(event)) {
      throw new InvalidBindingError(`Unsupported conference event ${event}`);
    }
    const pattern = `conference.event.${event}.*.${conferenceId}.*`;
    return { binding, pattern, conferenceId, callId: '*', event };
  }
  // Everything after the conference id is the call-id, which may itself contain dots; a
  // conference id cannot, since Kazoo puts it into its keys unencoded (spec §8 W15).
  const callId = rest.length === 0 ? '*' : bindingId(rest.join('.'));
  if (callId === undefined) throw invalidBindingFormat('conference', binding);
  const pattern = `conference.event.*.*.${conferenceId}.${callId}`;
  return { binding, pattern, conferenceId, callId, event: '*' };
}

/** `*`, or a literal id: a `*` inside an id would turn into a wildcard on the broker. */
function isConferenceWord(word: string): boolean {
  return word === '*' || (word !== '' && !word.includes('*'));
}

function conferenceBrokerKey(event: string, account: string, conferenceId: string): string {
  return `conference.event.${event}.${account}.${conferenceId}.*`;
}

/**
 * The broker would refuse to bind a longer key, and Kazoo could not publish events for such a
 * conference anyway: its keys are longer still.
 */
function fitsRoutingKey(event: string, conferenceId: string): boolean {
  return (
    Buffer.byteLength(conferenceBrokerKey(event, '0'.repeat(32), conferenceId)) <=
    MAX_ROUTING_KEY_BYTES
  );
}

/**
 * The tenant of a conference event, in the order Kazoo builds the routing key from
 * (`kapi_conference:event_key/1`): `Account-ID`, then `Custom-Channel-Vars.Account-ID`, then the
 * account word of the key itself, which only counts when it looks like an account id.
 */
function accountOf(message: KazooMessage, keyAccount: string | undefined): string | undefined {
  return (
    textField(message, 'Account-ID') ??
    channelVarsAccountId(message) ??
    (isAccountId(keyAccount) ? keyAccount : undefined)
  );
}
