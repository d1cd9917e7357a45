import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import type { Response } from 'express';
import { AmqpHealth, type AmqpStatus } from '../amqp/amqp-health';
import { CrossbarClient } from '../auth/crossbar.client';
import { EventStats } from '../core/events/event-stats';
import { SubscriptionRegistry } from '../core/subscriptions/subscription.registry';
import {
  ConnectionAdmission,
  type ConnectionCounts,
} from '../gateways/admission/connection-admission';

export interface HealthBody {
  status: 'ok' | 'unavailable';
  amqp: AmqpStatus;
  sessions: number;
  subscriptions: number;
  events: Record<string, number>;
  /** Crossbar requests in flight and waiting for a slot, and requests refused as busy since boot. */
  crossbar: { in_flight: number; queued: number; refused_busy: number };
  /** Open connections on every protocol, and handshakes refused by the connection caps. */
  connections: ConnectionCounts;
}

/** For load balancers and orchestrators: 200 while consuming from RabbitMQ, 503 otherwise. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly amqp: AmqpHealth,
    private readonly registry: SubscriptionRegistry,
    private readonly stats: EventStats,
    private readonly crossbar: CrossbarClient,
    private readonly admission: ConnectionAdmission,
  ) {}

  @Get()
  check(@Res({ passthrough: true }) response: Response): HealthBody {
    const amqp = this.amqp.status();
    response.status(amqp.consuming ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    response.setHeader('Cache-Control', 'no-store');
    return {
      status: amqp.consuming ? 'ok' : 'unavailable',
      amqp,
      sessions: this.registry.sessionCount,
      subscriptions: this.registry.subscriptionCount,
      events: this.stats.snapshot(),
      crossbar: crossbarLoad(this.crossbar),
      connections: this.admission.counts(),
    };
  }
}

function crossbarLoad(crossbar: CrossbarClient): HealthBody['crossbar'] {
  const { inFlight, queued, refusedBusy } = crossbar.load;
  return { in_flight: inFlight, queued, refused_busy: refusedBusy };
}
