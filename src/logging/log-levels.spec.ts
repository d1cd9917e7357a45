import { Writable } from 'node:stream';
import { LOG_LEVELS, loadEnvironment, type LogLevelName } from '../config/environment';
import { NodeIdentity } from '../config/node-identity';
import { createRootLogger } from './gateway-logger';
import { NEST_LOG_LEVELS, PINO_LOG_LEVELS } from './log-levels';

/** Which of Nest's six logger methods print at `level`, in Nest's and in pino's reading. */
const NEST_METHODS = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
const PINO_OF_NEST = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
} as const;

describe('LOG_LEVEL', () => {
  it('names a pino level for every value', () => {
    expect(Object.keys(PINO_LOG_LEVELS).sort()).toEqual([...LOG_LEVELS].sort());
    expect(PINO_LOG_LEVELS).toEqual({
      fatal: 'fatal',
      error: 'error',
      warn: 'warn',
      info: 'info',
      debug: 'debug',
      verbose: 'trace',
    });
  });

  it.each(LOG_LEVELS.map((level) => [level]))(
    'lets the same calls through in text and in JSON at %s',
    (level: LogLevelName) => {
      const root = createRootLogger(
        loadEnvironment({ LOG_LEVEL: level, LOG_FORMAT: 'json' }),
        new NodeIdentity(),
        new Writable({ write: (_chunk, _encoding, done) => done() }),
      );
      const inText = NEST_METHODS.filter((method) => NEST_LOG_LEVELS[level].includes(method));
      const inJson = NEST_METHODS.filter((method) => root.isLevelEnabled(PINO_OF_NEST[method]));
      expect(inJson).toEqual(inText);
      // Each level lets through itself and everything more severe.
      expect(inText).toEqual(NEST_METHODS.slice(0, inText.length));
    },
  );
});
