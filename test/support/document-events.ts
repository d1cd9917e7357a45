import { randomBytes } from 'node:crypto';
import { accountDb, accountModb } from '../../src/core';
import { readFixture } from './kazoo-events';

type Json = Record<string, unknown>;

export interface DocumentEvent {
  readonly routingKey: string;
  readonly body: Json;
}

/**
 * A document change as Kazoo's `kzs_publish` sends it on `configuration` (fixture 11),
 * re-addressed to `accountId`; `month` puts it in that month's MODB instead of the account db.
 */
export function documentEvent(
  action: 'doc_created' | 'doc_edited' | 'doc_deleted',
  type: string,
  accountId: string,
  options: { id?: string; month?: Date } = {},
): DocumentEvent {
  const fixture = readFixture<{ body: Json }>('object/11-amqp-configuration-doc_created-user.json');
  const id = options.id ?? randomBytes(16).toString('hex');
  const database = options.month ? accountModb(accountId, options.month) : accountDb(accountId);
  const body: Json = {
    ...fixture.body,
    ID: id,
    Type: type,
    Database: database,
    'Account-ID': accountId,
    'Event-Name': action,
    'Is-Soft-Deleted': action === 'doc_deleted',
    'Msg-ID': randomBytes(8).toString('hex'),
  };
  return { routingKey: `${action}.${database}.${type}.${id}`, body };
}
