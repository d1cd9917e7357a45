import { Injectable } from '@nestjs/common';
import { ExchangeSubscription } from '../../amqp/family-subscription';
import {
  wordAndId,
  textField,
  channelVarsAccountId,
  accountWord,
  EventFamilyProvider,
  type BindingContext,
  type BrokerKey,
  type Delivery,
  type EventFamily,
  type FamilyBinding,
  type FamilyEvent,
  type KazooMessage,
} from '../../core';

export const CALL_EXCHANGE = 'callevt';

/** The call events Kazoo 4.x lets clients subscribe to (`bh_call`). */
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
] as const;
export type CallEventName = (typeof CALL_EVENTS)[number];

const isCallEvent = (value: unknown): value is CallEventName =>
  typeof value === 'string' && (CALL_EVENTS as readonly string[]).includes(value);

interface CallBinding extends FamilyBinding {
  readonly event: CallEventName | '*';
  /** Encoded, or `*`. */
  readonly callId: string;
}

/**
 * Call events (`bh_call`): client bindings `call.<EVENT|*>.<CALL_ID|*>`, consumed from the
 * `callevt` exchange where Kazoo publishes `call.<EVENT>.<encoded call-id>`. The node binds
 * `call.<EVENT>.*` once for all accounts; accounts are told apart by
 * `Custom-Channel-Vars.Account-ID`.
 */
@Injectable()
@EventFamilyProvider({ prefix: 'call' })
export class CallFamily implements EventFamily<CallBinding> {
  readonly availableBindings = CALL_EVENTS.map((event) => `call.${event}.{CALL_ID}`);

  /**
   * `call.<EVENT|*>.<CALL_ID|*>`, nothing else: `call.X.*.*` or `call.*.abc.*` would bind keys
   * and then match no event Kazoo publishes. Kazoo judges the shape before the event.
   */
  parseBinding(binding: string): CallBinding {
    const { word: event, id: callId } = wordAndId('call', binding, {
      words: CALL_EVENTS,
      anyWord: true,
    });
    return { binding, pattern: `call.${event}.${callId}`, event, callId };
  }

  /**
   * `call.<EVENT>.*` for every event: one binding serves every account and call, a superduper
   * admin's `ALL_ACCOUNTS` included; accounts are told apart by the core.
   */
  brokerKeys(binding: CallBinding): BrokerKey[] {
    const events = binding.event === '*' ? CALL_EVENTS : [binding.event];
    return events.map((name) => ({ exchange: CALL_EXCHANGE, routingKey: `call.${name}.*` }));
  }

  /** Kazoo 4.x's account-scoped key: `call.<ACCOUNT|*>.<EVENT>.<CALL_ID>`. */
  subscriptionKey(binding: CallBinding, context: BindingContext): string {
    return `call.${accountWord(context.accountId)}.${binding.event}.${binding.callId}`;
  }

  @ExchangeSubscription(CALL_EXCHANGE)
  describe(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined {
    const name = message['Event-Name'];
    if (!isCallEvent(name)) return undefined;
    const accountId = accountOf(message);
    const encodedCallId = delivery.routingKey.split('.')[2] ?? '';
    return {
      accountId,
      key: delivery.routingKey,
      name,
      payload: message,
      // Kazoo 4.x re-keyed call events per account for its clients.
      routingKey: `call.${accountId ?? '*'}.${name}.${encodedCallId}`,
    };
  }
}

/** The tenant of a call event: `Custom-Channel-Vars.Account-ID`, else a top-level `Account-ID`. */
function accountOf(message: KazooMessage): string | undefined {
  return channelVarsAccountId(message) ?? textField(message, 'Account-ID');
}
