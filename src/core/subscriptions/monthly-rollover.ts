import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../clock';
import { SubscriptionService } from './subscription.service';

const CHECK_EVERY_MS = 60_000;

const monthOf = (date: Date): string => date.toISOString().slice(0, 7);

/**
 * Kazoo writes per-month documents (faxes, voicemail messages) to a database named after the
 * month, and the routing key names that database. When the month changes, subscriptions move
 * to the new month's keys by themselves (Kazoo's own Blackhole never does, spec W14).
 */
@Injectable()
export class MonthlyRollover implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MonthlyRollover.name);
  private month: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly subscriptions: SubscriptionService,
  ) {
    this.month = monthOf(clock.now());
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.check(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Moves subscriptions to the current month's keys if the month changed since the last check. */
  async check(): Promise<void> {
    const month = monthOf(this.clock.now());
    if (month === this.month) return;
    try {
      const moved = await this.subscriptions.refreshMonthlyKeys();
      this.month = month;
      this.logger.log(`month ${month}: moved ${moved} subscription(s) to the new month's keys`);
    } catch (error) {
      // The month stays unseen, so the next check tries again.
      this.logger.error(
        `month rollover failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}
