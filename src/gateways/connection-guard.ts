import type { Logger } from '@nestjs/common';
import { ErrorCode } from '../core/errors';
import type { EventStats } from '../core/events/event-stats';
import { connectionLog } from '../logging/log-record';

/**
 * What a connection gets when a failure nobody foresaw escapes its frame handler: plain
 * WebSocket close code 1011 ("internal error", RFC 6455), and on socket.io an `error` event
 * with this body before the server disconnects it.
 */
export const INTERNAL_ERROR_CLOSE_CODE = 1011;
export const INTERNAL_ERROR_REASON = 'internal error';
export const INTERNAL_ERROR = { code: ErrorCode.Internal, message: INTERNAL_ERROR_REASON } as const;

/**
 * The last line behind every inbound-frame handler. Handlers answer every input they know with
 * a coded error; this is for the bugs not known yet. A handler that throws or rejects has left
 * its connection in a state nobody reasoned about, so that connection, and only that one, is
 * closed with a code, counted (`/health` `events.internal_error_disconnects`) and logged once
 * with the stack (never the frame, which may hold a token). The process and every other
 * connection carry on.
 */
export class ConnectionGuard<C extends object> {
  /** Connections already closed by the guard: a burst of failing frames logs and counts once. */
  private readonly contained = new WeakSet<C>();

  constructor(
    private readonly stats: EventStats,
    private readonly logger: Logger,
    /** Names a connection in the log (`connection`) without giving away a credential. */
    private readonly nameOf: (connection: C) => string,
    /** Closes the connection with the protocol's code; must not throw, but is guarded anyway. */
    private readonly close: (connection: C) => void,
  ) {}

  /**
   * Runs a frame handler: anything it throws, synchronously or by rejecting, closes
   * `connection`. Never throws and never returns a promise that rejects.
   */
  run(connection: C, handler: () => Promise<unknown> | void): void {
    try {
      const pending = handler();
      if (pending) pending.catch((error: unknown) => this.fail(connection, error));
    } catch (error) {
      this.fail(connection, error);
    }
  }

  /** Closes `connection` after a failure that escaped its handler. */
  fail(connection: C, error: unknown): void {
    if (this.contained.has(connection)) return;
    this.contained.add(connection);
    this.stats.internalErrorDisconnects += 1;
    this.logger.error(
      connectionLog(
        this.nameOf(connection),
        `closed after an internal error: ${error instanceof Error ? error.stack : String(error)}`,
      ),
    );
    try {
      this.close(connection);
    } catch (closeError) {
      this.logger.error(
        connectionLog(
          this.nameOf(connection),
          `closing failed: ${closeError instanceof Error ? closeError.stack : String(closeError)}`,
        ),
      );
    }
  }
}
