import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { GatewaysModule } from '../gateways/gateways.module';
import { MetricsController } from './metrics.controller';
import { AppMetricsRegistry, MetricsRegistry } from './metrics.registry';

/** `GET /metrics`: the node's counters and state in Prometheus' text format. */
@Module({
  imports: [AuthModule, GatewaysModule],
  controllers: [MetricsController],
  providers: [{ provide: MetricsRegistry, useClass: AppMetricsRegistry }],
})
export class MetricsModule {}
