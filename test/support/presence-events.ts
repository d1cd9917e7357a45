import { createHash, randomBytes } from 'node:crypto';
import { encodeRoutingWord } from '../../src/core/topics/routing-key-encoding';
import type { PresenceKind } from '../../src/features/presence/presence.family';
import { readFixture } from './kazoo-events';

type Json = Record<string, unknown>;

export interface PresenceFixture {
  readonly exchange: string;
  readonly routing_key: string;
  readonly body: Json;
}

/** The realm every presence fixture is written for. */
export const FIXTURE_REALM = 'wefwefwefwef.2600hz.com';

/** A synthesized presence fixture without its `_source` note, which Kazoo would never publish. */
export function presenceFixture(kind: PresenceKind): PresenceFixture {
  const { _source, ...fixture } = readFixture<PresenceFixture & { _source?: string }>(
    `presence/${kind}.json`,
  );
  return fixture;
}

/**
 * The fixture of `kind` re-addressed to `realm` and `id` (the call-id of a dialog or update, the
 * SIP user of an MWI update), published under the key `kapi_presence` would give it.
 */
export function presenceEvent(
  kind: PresenceKind,
  realm: string,
  id: string,
): { routingKey: string; body: Json } {
  // The realm has no JSON-special characters, so it can be swapped in the serialized form.
  const readdressed = JSON.parse(
    JSON.stringify(presenceFixture(kind).body).replaceAll(FIXTURE_REALM, realm),
  ) as Json;
  const body: Json = { ...readdressed, 'Msg-ID': randomBytes(16).toString('hex') };
  if (kind === 'mwi_updates') {
    // As kapi_presence:mwi_extended_update/1 derives them from `To`.
    const to = `${id}@${realm}`;
    Object.assign(body, {
      'Call-ID': createHash('md5').update(to).digest('hex'),
      From: `sip:${to}`,
      'From-User': id,
      To: `sip:${to}`,
      'To-User': id,
      'Message-Account': `sip:${to}`,
      'Presence-ID': to,
    });
  } else {
    body['Call-ID'] = id;
  }
  return { routingKey: `${kind}.${encodeRoutingWord(realm)}.${encodeRoutingWord(id)}`, body };
}

/** The realm Crossbar gives `accountId`, read the way the gateway reads it. */
export async function realmOf(
  crossbarUrl: string,
  token: string,
  accountId: string,
): Promise<string> {
  const response = await fetch(`${crossbarUrl}/accounts/${accountId}`, {
    headers: { 'X-Auth-Token': token },
  });
  const envelope = (await response.json()) as { data?: { realm?: unknown } };
  const realm = envelope.data?.realm;
  if (response.status !== 200 || typeof realm !== 'string') {
    throw new Error(`crossbar gave no realm for ${accountId} (${response.status})`);
  }
  return realm;
}
