import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';
import { Environment } from '../../config/environment';

/**
 * socket.io on the application's HTTP server, with the frame limit from the environment. The
 * port is shared with other protocols (`TransportRouter`), so engine.io must never destroy an
 * upgrade it does not own (`destroyUpgrade: false`).
 */
export class GatewayIoAdapter extends IoAdapter {
  constructor(private readonly app: INestApplicationContext) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const env = this.app.get(Environment);
    return super.createIOServer(port, {
      ...options,
      maxHttpBufferSize: env.MAX_FRAME_BYTES,
      destroyUpgrade: false,
    }) as Server;
  }
}
