import { randomBytes } from 'node:crypto';
import { encodeRoutingWord } from '../../src/core/topics/routing-key-encoding';
import { readFixture } from './kazoo-events';

type Json = Record<string, unknown>;

export interface ConferenceEventOptions {
  /** Kazoo's `Event` (`add-member`, `del-member`, …); the fixture's `add-member` by default. */
  readonly event?: string;
  /** The fixture's conference by default. */
  readonly conferenceId?: string;
  /** The fixture's call by default; `null` leaves `Call-ID` out, as conference-wide events do. */
  readonly callId?: string | null;
  /** `false` takes the account out of the body, so only the routing key names it. */
  readonly accountInBody?: boolean;
  /**
   * The `Msg-ID`; random by default. Kazoo's are not unique (fixture 05 shares its own with a
   * call fixture), so a test may repeat one on purpose.
   */
  readonly msgId?: string;
}

/**
 * A Kazoo 4.x conference event shaped like fixture 05, re-addressed to `accountId`, with the
 * routing key `kapi_conference:event_key/1` gives it: the call-id is encoded, the conference id
 * is not, and the call-id defaults to the conference id.
 */
export function conferenceEvent(
  accountId: string,
  { event, conferenceId, callId, accountInBody = true, msgId }: ConferenceEventOptions = {},
): { routingKey: string; body: Json } {
  const fixture = readFixture<{ body: Json }>(
    'conference/05-amqp-conference-event-4.3-add-member.json',
  );
  const body: Json = {
    ...fixture.body,
    'Msg-ID': msgId ?? randomBytes(16).toString('hex'),
    'Account-ID': accountId,
    'Custom-Channel-Vars': {
      ...(fixture.body['Custom-Channel-Vars'] as Json),
      'Account-ID': accountId,
    },
  };
  if (event !== undefined) body.Event = event;
  if (conferenceId !== undefined) body['Conference-ID'] = conferenceId;
  if (callId === null) delete body['Call-ID'];
  else if (callId !== undefined) body['Call-ID'] = callId;
  if (!accountInBody) {
    delete body['Account-ID'];
    delete (body['Custom-Channel-Vars'] as Json)['Account-ID'];
  }
  const conference = body['Conference-ID'] as string;
  const call = (body['Call-ID'] as string | undefined) ?? conference;
  return {
    routingKey: `conference.event.${String(body.Event)}.${accountId}.${conference}.${encodeRoutingWord(call)}`,
    body,
  };
}
