import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KazooMessage } from '../families/event-family';
import { kazooEventData, normalizeKazooJson, publicFields } from './normalize';

const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(join(__dirname, '../../../test/fixtures/call', name), 'utf8')) as T;

describe('Kazoo 4.x payload shaping', () => {
  it('turns the raw CHANNEL_CREATE (fixture 02) into the data Kazoo 4.3 sends (fixture 03)', () => {
    const raw = fixture<{ body: KazooMessage }>('02-amqp-callevt-CHANNEL_CREATE.json').body;
    const sent = fixture<{ data: KazooMessage }>('03-ws-4.3-event-CHANNEL_CREATE.json').data;
    expect(normalizeKazooJson(publicFields(raw))).toEqual(sent);
    expect(kazooEventData(raw)).toEqual(sent);
  });

  it('shapes event data without touching the message', () => {
    const message = { Node: 'n', 'Call-ID': 'c', Nested: { Node: 'kept below the top level' } };
    const before = JSON.stringify(message);
    expect(kazooEventData(message)).toEqual({
      call_id: 'c',
      nested: { node: 'kept below the top level' },
    });
    expect(JSON.stringify(message)).toBe(before);
  });

  it('normalizes keys recursively, inside arrays too, and drops nulls', () => {
    expect(
      normalizeKazooJson({
        'Call-ID': 'x',
        'Custom-Channel-Vars': { 'Account-ID': 'a', 'Owner-ID': null },
        Participants: [{ 'Is-Moderator': true }, 'plain'],
        'ÀÉ-Ü×': 1,
      }),
    ).toEqual({
      call_id: 'x',
      custom_channel_vars: { account_id: 'a' },
      participants: [{ is_moderator: true }, 'plain'],
      'àé_ü×': 1,
    });
  });

  it('removes only the private headers', () => {
    expect(
      publicFields({ Node: 'n', 'Server-ID': 's', 'Account-ID': 'a', 'Call-ID': 'c' }),
    ).toEqual({
      'Account-ID': 'a',
      'Call-ID': 'c',
    });
  });
});
