import { Injectable } from '@nestjs/common';
import { ExchangeSubscription } from '../../amqp/family-subscription';
import {
  textField,
  channelVarsAccountId,
  EventFamilyProvider,
  invalidBindingFormat,
  isAccountId,
  normalizeClientId,
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

/** A parsed conference binding; `brokerKeys` needs the conference id on its own. */
interface ConferenceBinding extends FamilyBinding {
  /** As the client wrote it (Kazoo never encodes conference ids), or `*`. */
  readonly conferenceId: string;
}

/**
 * Conference events (`bh_conference`, master's grammar): client bindings
 * `conference.event.<CONF_ID|*>` and `conference.event.<CONF_ID|*>.<CALL_ID|*>`, consumed from the
 * `conference` exchange where Kazoo 4.x publishes
 * `conference.event.<Event>.<AccountId>.<ConferenceId>.<encoded CallId>`.
 *
 * Unlike the call family, the account is part of the broker key
 * (`conference.event.*.<ACCOUNT>.<CONF_ID|*>.*`), so a node only receives the conferences of the
 * accounts its clients watch. `conference.command.<ConfId>` is deliberately not offered: Kazoo's
 * command keys carry no account, so anyone could watch any tenant's conference (spec §8 W17).
 */
@Injectable()
@EventFamilyProvider({ prefix: 'conference' })
export class ConferenceFamily implements EventFamily<ConferenceBinding> {
  readonly availableBindings = [
    'conference.event.{CONFERENCE_ID}',
    'conference.event.{CONFERENCE_ID}.{CALL_ID}',
  ];

  parseBinding(binding: string): ConferenceBinding {
    const [, kind, conferenceId, ...rest] = binding.split('.');
    // Everything after the conference id is the call-id, which may itself contain dots; a
    // conference id cannot, since Kazoo puts it into its keys unencoded (spec §8 W15).
    const callId = rest.length === 0 ? '*' : rest.join('.');
    if (
      kind !== 'event' ||
      conferenceId === undefined ||
      !isConferenceWord(conferenceId) ||
      callId === '' ||
      binding.includes('#') ||
      !fitsRoutingKey(conferenceId)
    ) {
      throw invalidBindingFormat('conference', binding);
    }
    return {
      binding,
      pattern: `conference.event.*.*.${conferenceId}.${callId === '*' ? '*' : normalizeClientId(callId)}`,
      conferenceId,
    };
  }

  /**
   * One key per account and conference; the call-id is left to the pattern so that every
   * binding on a conference shares the key.
   */
  brokerKeys(binding: ConferenceBinding, context: BindingContext): BrokerKey[] {
    return [
      {
        exchange: CONFERENCE_EXCHANGE,
        routingKey: conferenceBrokerKey(context.accountId, binding.conferenceId),
      },
    ];
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

/** `*`, or a literal id: a `*` inside an id would turn into a wildcard on the broker. */
function isConferenceWord(word: string): boolean {
  return word === '*' || (word !== '' && !word.includes('*'));
}

function conferenceBrokerKey(accountId: string, conferenceId: string): string {
  return `conference.event.*.${accountId}.${conferenceId}.*`;
}

/**
 * The broker would refuse to bind a longer key, and Kazoo could not publish events for such a
 * conference anyway: its keys are longer still.
 */
function fitsRoutingKey(conferenceId: string): boolean {
  return (
    Buffer.byteLength(conferenceBrokerKey('0'.repeat(32), conferenceId)) <= MAX_ROUTING_KEY_BYTES
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
