import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRoutingWord } from '../../src/core/topics/routing-key-encoding';

type Json = Record<string, unknown>;

const FIXTURES = join(__dirname, '..', 'fixtures');

export function readFixture<T = Json>(relativePath: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, relativePath), 'utf8')) as T;
}

/**
 * A Kazoo call event from the 3.22 documentation, re-addressed to `accountId` and `callId`. The
 * captured `Msg-ID` is kept: ecallmgr sets it to FreeSWITCH's microsecond event timestamp, so
 * every event of one name built here shares it, as concurrent legs and calls do in Kazoo.
 */
export function callEvent(
  eventName: 'CHANNEL_CREATE' | 'CHANNEL_ANSWER' | 'CHANNEL_DESTROY',
  accountId: string,
  callId = randomBytes(10).toString('hex'),
): { routingKey: string; body: Json } {
  const fixture = readFixture<{ args: Json }>(`call/01-socketio-3.22-${eventName}.json`);
  const body: Json = {
    ...fixture.args,
    'Call-ID': callId,
    'Custom-Channel-Vars': {
      ...(fixture.args['Custom-Channel-Vars'] as Json),
      'Account-ID': accountId,
    },
  };
  return { routingKey: `call.${eventName}.${encodeRoutingWord(callId)}`, body };
}
