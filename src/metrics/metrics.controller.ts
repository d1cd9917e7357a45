import { timingSafeEqual, createHash } from 'node:crypto';
import { Controller, Get, Headers, Res, UnauthorizedException } from '@nestjs/common';
import type { Response } from 'express';
import { Environment } from '../config/environment';
import { MetricsRegistry } from './metrics.registry';

/** Digests of equal length, so the comparison takes the same time whatever the token's length. */
const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * Whether `authorization` carries `Bearer <expected>`. Compared in constant time: a scraper's
 * token must not be guessable a character at a time from response times.
 */
export function bearerMatches(authorization: string | undefined, expected: string): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  return match !== null && timingSafeEqual(digest(match[1]), digest(expected));
}

/** Prometheus' scrape endpoint; behind `Authorization: Bearer` when `METRICS_TOKEN` is set. */
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsRegistry,
    private readonly env: Environment,
  ) {}

  @Get()
  async scrape(
    @Headers('authorization') authorization: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<string> {
    const token = this.env.METRICS_TOKEN;
    if (token !== '' && !bearerMatches(authorization, token)) {
      response.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
      throw new UnauthorizedException('a valid bearer token is required');
    }
    response.setHeader('Content-Type', this.metrics.contentType);
    response.setHeader('Cache-Control', 'no-store');
    return this.metrics.metrics();
  }
}
