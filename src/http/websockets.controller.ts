import { Controller, Get, Headers } from '@nestjs/common';
import { NodeIdentity } from '../config/node-identity';
import { FamilyRegistry } from '../core/families/family.registry';
import { requestIdOf } from './crossbar-envelope';
import { BLACKHOLE_VERSION } from './version';

/** Crossbar's success envelope around the bindings catalog (spec §6.3, fixture 10). */
export interface AvailableBindingsResponse {
  data: Record<string, readonly string[]>;
  node: string;
  request_id: string;
  status: 'success';
  timestamp: string;
  version: string;
}

/**
 * `GET /v2/websockets`: the bindings each registered family offers, in Kazoo 4.x's shape,
 * so a family added by a third-party module shows up by itself.
 */
@Controller('v2/websockets')
export class WebsocketsController {
  constructor(
    private readonly families: FamilyRegistry,
    private readonly node: NodeIdentity,
  ) {}

  @Get()
  available(@Headers('x-request-id') requestId?: string): AvailableBindingsResponse {
    const data: Record<string, readonly string[]> = {};
    for (const { prefix, family } of this.families.all()) data[prefix] = family.availableBindings;
    return {
      data,
      node: this.node.publicId,
      request_id: requestIdOf(requestId),
      status: 'success',
      timestamp: new Date().toISOString(),
      version: BLACKHOLE_VERSION,
    };
  }
}
