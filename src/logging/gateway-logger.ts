import { ConsoleLogger, type LoggerService, type LogLevel } from '@nestjs/common';
import { Logger as PinoNestLogger, PinoLogger, type Params } from 'nestjs-pino';
import { pino, type DestinationStream, type Logger as PinoRoot } from 'pino';
import type { Environment } from '../config/environment';
import type { NodeIdentity } from '../config/node-identity';
import { NEST_LOG_LEVELS, PINO_LOG_LEVELS } from './log-levels';
import { isLogRecord, recordText } from './log-record';

/**
 * Nest announces "successfully started" before the port is bound, so a port in use would read
 * as a start followed by a failure; `main.ts` says where it listens once it does.
 */
const PREMATURE_START = 'Nest application successfully started';

/** Text logs: Nest's own lines, with `LogRecord`s put in words. */
class TextLogger extends ConsoleLogger {
  override log(message: unknown, ...rest: unknown[]): void {
    if (message === PREMATURE_START) return;
    super.log(message, ...rest);
  }

  protected override stringifyMessage(message: unknown, logLevel: LogLevel): string {
    const text: unknown = super.stringifyMessage(
      isLogRecord(message) ? recordText(message) : message,
      logLevel,
    );
    return String(text);
  }
}

/** JSON logs: nestjs-pino's mapping of Nest's logger calls onto pino. */
class JsonLogger extends PinoNestLogger {
  override log(message: unknown, ...rest: unknown[]): void {
    if (message === PREMATURE_START) return;
    super.log(message, ...rest);
  }
}

/**
 * The pino logger every JSON line comes from: `level` as a name, an ISO `time`, `msg`, and
 * the node's public id, never the host name (pino's default) nor the private node id.
 */
export function createRootLogger(
  environment: Environment,
  node: NodeIdentity,
  destination: DestinationStream = process.stdout,
): PinoRoot {
  return pino(
    {
      level: PINO_LOG_LEVELS[environment.LOG_LEVEL],
      base: { pid: process.pid, node: node.publicId },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** The application's logger: every `new Logger(Context)` in the code writes through it. */
export function createLogger(environment: Environment, root: PinoRoot | undefined): LoggerService {
  if (environment.LOG_FORMAT === 'json' && root !== undefined) {
    // nestjs-pino keeps the first logger it is given for the whole process: a second gateway
    // in one process (tests) writes with the first one's fields.
    const params: Params = { pinoHttp: { logger: root } };
    return new JsonLogger(new PinoLogger(params), params);
  }
  return new TextLogger('Blackhole', {
    logLevels: NEST_LOG_LEVELS[environment.LOG_LEVEL],
    colors: process.stdout.isTTY === true,
  });
}
