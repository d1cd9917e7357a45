import { Injectable } from '@nestjs/common';
import { ExchangeSubscription } from '../../amqp/family-subscription';
import {
  textField,
  EventFamilyProvider,
  InvalidBindingError,
  invalidBindingFormat,
  accountDb,
  accountOfDatabase,
  modbWindow,
  normalizeClientId,
  type BindingContext,
  type BrokerKey,
  type Delivery,
  type EventFamily,
  type FamilyBinding,
  type FamilyEvent,
  type KazooMessage,
} from '../../core';

export const CONFIGURATION_EXCHANGE = 'configuration';

/** Document changes Kazoo publishes (`kzs_publish`). */
export const DOC_ACTIONS = ['doc_created', 'doc_edited', 'doc_deleted'] as const;
export type DocAction = (typeof DOC_ACTIONS)[number];

/** Document types clients may watch (Kazoo 4.3 `doc_types.hrl`). */
export const DOC_TYPES = [
  'account',
  'callflow',
  'device',
  'faxbox',
  'media',
  'user',
  'vmbox',
  'fax',
  'mailbox_message',
  'call_recording',
] as const;
export type DocType = (typeof DOC_TYPES)[number];

/** Types stored in the account's month databases (MODB) rather than its account database. */
const MODB_TYPES: ReadonlySet<string> = new Set<DocType>(['fax', 'mailbox_message']);

const isAction = (word: string): word is DocAction =>
  (DOC_ACTIONS as readonly string[]).includes(word);
const isType = (word: string): word is DocType => (DOC_TYPES as readonly string[]).includes(word);

interface ObjectBinding extends FamilyBinding {
  readonly action: DocAction | '*';
  readonly type: DocType | '*';
}

/**
 * Document changes (`bh_object`): created, edited and deleted users, devices, callflows,
 * voicemail boxes, … of an account. Clients use Kazoo 4.x's `object.<ACTION|*>.<TYPE|*>` or
 * Kazoo 3.x's `<ACTION>.<DB|*>.<TYPE>.<ID|*>` (whose database word is ignored: the account
 * always comes from the subscription, never from the client's pattern). Kazoo publishes on the
 * `configuration` exchange with `<action>.<database>.<type>.<encoded id>`; month databases
 * change name every month, so those keys are recomputed when the month turns.
 */
@Injectable()
@EventFamilyProvider({ prefix: 'object', aliases: [...DOC_ACTIONS], monthlyKeys: true })
export class ObjectFamily implements EventFamily<ObjectBinding> {
  readonly availableBindings = DOC_ACTIONS.flatMap((action) =>
    DOC_TYPES.map((type) => `object.${action}.${type}`),
  );

  parseBinding(binding: string): ObjectBinding {
    const words = binding.split('.');
    if (binding.includes('#')) throw invalidBindingFormat('object', binding);
    if (words[0] === 'object') {
      if (words.length !== 3) throw invalidBindingFormat('object', binding);
      const [, action, type] = words;
      checkSupported(action, type);
      return {
        binding,
        pattern: `${action}.*.${type}.*`,
        action: action as DocAction | '*',
        type: type as DocType | '*',
      };
    }
    // Kazoo 3.x: <ACTION>.<DB|*>.<TYPE>.<ID|*>; the id may itself contain dots.
    const [action, , type, ...rest] = words;
    const id = rest.join('.');
    if (words.length < 4 || id === '') throw invalidBindingFormat('object', binding);
    checkSupported(action, type);
    return {
      binding,
      pattern: `${action}.*.${type}.${id === '*' ? '*' : normalizeClientId(id)}`,
      action: action as DocAction,
      type: type as DocType | '*',
    };
  }

  brokerKeys(binding: ObjectBinding, context: BindingContext): BrokerKey[] {
    const databases =
      binding.type === '*'
        ? [accountDb(context.accountId), ...modbWindow(context.accountId, context.now)]
        : MODB_TYPES.has(binding.type)
          ? modbWindow(context.accountId, context.now)
          : [accountDb(context.accountId)];
    return databases.map((database) => ({
      exchange: CONFIGURATION_EXCHANGE,
      routingKey: `${binding.action}.${database}.${binding.type}.*`,
    }));
  }

  @ExchangeSubscription(CONFIGURATION_EXCHANGE)
  describe(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined {
    const name = message['Event-Name'];
    if (typeof name !== 'string' || !isAction(name)) return undefined;
    const [, database = '', routedType = ''] = delivery.routingKey.split('.');
    const type = typeof message.Type === 'string' ? message.Type : routedType;
    return {
      accountId: accountOf(message, database),
      key: delivery.routingKey,
      name,
      payload: message,
      legacyName: `${name}_${type}`,
    };
  }
}

/**
 * The database a document lives in decides its tenant; `Account-ID` only fills in for
 * databases that do not name an account.
 */
function accountOf(message: KazooMessage, routedDatabase: string): string | undefined {
  const database = typeof message.Database === 'string' ? message.Database : routedDatabase;
  return accountOfDatabase(database) ?? textField(message, 'Account-ID');
}

function checkSupported(action: string, type: string): void {
  const actionOk = action === '*' || isAction(action);
  const typeOk = type === '*' || isType(type);
  if (actionOk && typeOk) return;
  if (!actionOk && !typeOk) throw new InvalidBindingError(`event ${action}.${type} not supported`);
  throw new InvalidBindingError(
    actionOk ? `event *.${type} not supported` : `event ${action}.* not supported`,
  );
}
