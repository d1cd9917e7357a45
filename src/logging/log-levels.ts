import type { LogLevel } from '@nestjs/common';
import type { Level } from 'pino';
import type { LogLevelName } from '../config/environment';

/** `LOG_LEVEL` as the levels Nest's `ConsoleLogger` prints (Nest calls `info` `log`). */
export const NEST_LOG_LEVELS: Readonly<Record<LogLevelName, LogLevel[]>> = {
  fatal: ['fatal'],
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  verbose: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

/** `LOG_LEVEL` as pino's threshold: nestjs-pino writes Nest's `verbose` at pino's `trace`. */
export const PINO_LOG_LEVELS: Readonly<Record<LogLevelName, Level>> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  info: 'info',
  debug: 'debug',
  verbose: 'trace',
};
