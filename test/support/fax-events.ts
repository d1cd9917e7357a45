import { randomBytes } from 'node:crypto';
import { encodeRoutingWord } from '../../src/core';
import { documentEvent } from './document-events';
import { readFixture } from './kazoo-events';

type Json = Record<string, unknown>;

export interface FaxStatusFixture {
  readonly exchange: string;
  readonly routing_key: string;
  readonly body: Json;
  readonly '_3.22_equivalent': { readonly socketio_frame: { name: string; args: Json } };
}

export interface KazooDelivery {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Json;
}

export const FAX_STATUS_EXCHANGE = 'faxes';
export const CONFIGURATION_EXCHANGE = 'configuration';

export const faxStatusFixture = (): FaxStatusFixture =>
  readFixture<FaxStatusFixture>('fax/08-amqp-fax-status-4.3.json');

/**
 * Fixture 08's fax status re-addressed to `accountId` and `jobId`, keyed the way Kazoo 4.x's
 * `kapi_fax:publish_status/2` keys it: `fax.status.<Account-ID or *>.<encoded Job-ID>`.
 * `withoutAccountId` drops `Account-ID` from the body (the routing key still names the account).
 */
export function faxStatus(
  accountId: string,
  jobId: string,
  options: { readonly withoutAccountId?: boolean; readonly fields?: Json } = {},
): KazooDelivery {
  const { 'Account-ID': _fixtureAccount, ...fixtureBody } = faxStatusFixture().body;
  const body: Json = {
    ...fixtureBody,
    ...(options.withoutAccountId ? {} : { 'Account-ID': accountId }),
    'Job-ID': jobId,
    // Every Kazoo message has its own Msg-ID (sessions drop repeats).
    'Msg-ID': randomBytes(16).toString('hex'),
    ...options.fields,
  };
  return {
    exchange: FAX_STATUS_EXCHANGE,
    routingKey: `fax.status.${accountId}.${encodeRoutingWord(jobId)}`,
    body,
  };
}

/**
 * A fax document change as `kzs_publish:publish/3` sends it: fixture 11's document, typed `fax`
 * and stored in `accountId`'s MODB for the month of `month` (UTC), keyed
 * `<action>.<MODB>.fax.<id>` on `configuration`.
 */
export function faxDocument(
  action: 'doc_created' | 'doc_edited' | 'doc_deleted',
  accountId: string,
  month: Date,
  id?: string,
): KazooDelivery {
  return {
    exchange: CONFIGURATION_EXCHANGE,
    ...documentEvent(action, 'fax', accountId, { id, month }),
  };
}
