import { Injectable } from '@nestjs/common';
import { RabbitSubscribe } from '@golevelup/nestjs-rabbitmq';
import type { ConsumeMessage } from 'amqplib';
import { deliveryOf, familySubscription } from '../../amqp/family-subscription';
import {
  textField,
  channelVarsAccountId,
  EventFamilyProvider,
  EventIngress,
  InvalidBindingError,
  invalidBindingFormat,
  normalizeClientId,
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
  readonly events: readonly CallEventName[];
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

  constructor(private readonly ingress: EventIngress) {}

  @RabbitSubscribe(familySubscription(CALL_EXCHANGE))
  onCallEvent(message: unknown, amqpMessage: ConsumeMessage): void {
    this.ingress.ingest(this, message, deliveryOf(amqpMessage));
  }

  parseBinding(binding: string): CallBinding {
    const [, event, ...rest] = binding.split('.');
    // Everything after the event is the call-id, which may itself contain dots.
    const callId = rest.join('.');
    if (event === undefined || callId === '' || binding.includes('#')) {
      throw invalidBindingFormat('call', binding);
    }
    if (event !== '*' && !isCallEvent(event)) {
      throw new InvalidBindingError(`event ${event} not supported`);
    }
    return {
      binding,
      pattern: `call.${event}.${callId === '*' ? '*' : normalizeClientId(callId)}`,
      events: event === '*' ? CALL_EVENTS : [event],
    };
  }

  /** `call.<EVENT>.*` for every event: one binding serves every account and call. */
  brokerKeys(binding: CallBinding): BrokerKey[] {
    return binding.events.map((name) => ({
      exchange: CALL_EXCHANGE,
      routingKey: `call.${name}.*`,
    }));
  }

  describe(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined {
    const name = message['Event-Name'];
    if (!isCallEvent(name)) return undefined;
    return {
      accountId: accountOf(message),
      key: delivery.routingKey,
      name,
      payload: message,
    };
  }
}

/** The tenant of a call event: `Custom-Channel-Vars.Account-ID`, else a top-level `Account-ID`. */
function accountOf(message: KazooMessage): string | undefined {
  return channelVarsAccountId(message) ?? textField(message, 'Account-ID');
}
