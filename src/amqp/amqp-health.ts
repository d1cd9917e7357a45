import { Injectable } from '@nestjs/common';
import { BrokerConnection } from './broker-connection';
import { ExchangeConsumers } from './exchange-consumers';
import { QueueBinder, type ExchangeDeclaration } from './queue-binder';

/** Unbound keys listed by name in `/health`; the count covers them all. */
const LISTED_UNBOUND_KEYS = 50;

export interface ExchangeHealth {
  readonly exchange: string;
  readonly queue: string;
  readonly families: string[];
  readonly consuming: boolean;
  /** Why the exchange is not consumed, while it is not. */
  readonly reason?: string;
  /** `declared` with Kazoo's flags, or `existing` with other flags, used as it is. */
  readonly declaration?: ExchangeDeclaration;
  /** Why the exchange could not be declared or checked, while it cannot. */
  readonly exchange_problem?: string;
  readonly recoveries: number;
  readonly redeclarations: number;
}

export interface UnboundKeyHealth {
  readonly exchange: string;
  readonly routing_key: string;
  readonly references: number;
  readonly reason: string;
}

export interface AmqpStatus {
  readonly connected: boolean;
  /** Every exchange is consumed. */
  readonly consuming: boolean;
  /** Exchanges the node consumes (one consumer each). */
  readonly consumers: number;
  /** Keys held by subscriptions. */
  readonly bound_keys: number;
  /** Why the node is not connected, while it is not. */
  readonly disconnect_reason?: string;
  readonly exchanges: ExchangeHealth[];
  /** Keys held by subscriptions that are not bound on the broker right now. */
  readonly unbound_key_count: number;
  /** The first of them, with the reason. */
  readonly unbound_keys: UnboundKeyHealth[];
}

/** Whether this node is consuming from RabbitMQ right now, and what it could not do. */
@Injectable()
export class AmqpHealth {
  constructor(
    private readonly broker: BrokerConnection,
    private readonly consumers: ExchangeConsumers,
    private readonly binder: QueueBinder,
  ) {}

  status(): AmqpStatus {
    const connected = this.broker.isConnected;
    const bindings = new Map(this.binder.exchangeStatus().map((s) => [s.exchange, s]));
    const unbound = this.binder.unappliedKeys();
    return {
      connected,
      consuming: connected && this.consumers.allConsuming,
      consumers: this.consumers.count,
      bound_keys: this.binder.boundKeys().length,
      ...(connected ? {} : { disconnect_reason: this.broker.disconnectReason }),
      exchanges: this.consumers.exchanges().map((consumer) => {
        const binding = bindings.get(consumer.exchange);
        return {
          exchange: consumer.exchange,
          queue: consumer.queue,
          families: consumer.families,
          consuming: consumer.consuming,
          ...(consumer.reason === undefined ? {} : { reason: consumer.reason }),
          ...(binding?.declaration === undefined ? {} : { declaration: binding.declaration }),
          ...(binding?.problem === undefined ? {} : { exchange_problem: binding.problem }),
          recoveries: consumer.recoveries,
          redeclarations: binding?.redeclarations ?? 0,
        };
      }),
      unbound_key_count: unbound.length,
      unbound_keys: unbound.slice(0, LISTED_UNBOUND_KEYS).map((key) => ({
        exchange: key.exchange,
        routing_key: key.routingKey,
        references: key.references,
        reason: key.reason,
      })),
    };
  }
}
