import { Injectable } from '@nestjs/common';
import { ExchangeSubscription } from '../../amqp/family-subscription';
import {
  accountWord,
  ALL_ACCOUNTS,
  bindingId,
  EventFamilyProvider,
  InvalidBindingError,
  invalidBindingFormat,
  accountDb,
  accountOfDatabase,
  modbWindow,
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

  /**
   * Kazoo 4.x's `object.<ACTION|*>.<TYPE|*>` is exactly three words. Kazoo 3.x's
   * `<ACTION>.<DB|*>.<TYPE>.<ID|*>` names one type (3.22 bound nothing for a `*` type); its id may
   * contain dots, its database word is one word and ignored. A wildcard inside any word
   * (`doc_created.*.user.ab*c`, `object.*.user.*`) is refused.
   */
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
    const [action, database, type, ...rest] = words;
    const id = bindingId(rest.join('.'));
    if (
      words.length < 4 ||
      !isWholeWordOrLiteral(database) ||
      !isLiteral(type) ||
      id === undefined
    ) {
      throw invalidBindingFormat('object', binding);
    }
    // The prefix is one of the actions (it selected this family).
    checkSupported(action, type);
    return {
      binding,
      pattern: `${action}.*.${type}.${id}`,
      action: action as DocAction,
      type: type as DocType,
    };
  }

  /**
   * The account database, its month databases, or both for type `*`. A superduper admin's
   * `ALL_ACCOUNTS` cannot name a database of "every account": its keys leave the database word
   * open (`<action>.*.<type>.*`), and `describe` keeps only documents whose database names their
   * account.
   */
  brokerKeys(binding: ObjectBinding, context: BindingContext): BrokerKey[] {
    const account = accountWord(context.accountId);
    const databases =
      account === ALL_ACCOUNTS
        ? ['*']
        : binding.type === '*'
          ? [accountDb(account), ...modbWindow(account, context.now)]
          : MODB_TYPES.has(binding.type)
            ? modbWindow(account, context.now)
            : [accountDb(account)];
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
    const accountId = accountOf(message, database);
    if (accountId === undefined) return undefined;
    return {
      accountId,
      key: delivery.routingKey,
      name,
      payload: message,
      legacyName: `${name}_${type}`,
    };
  }
}

/**
 * The database a document lives in decides its tenant, and nothing else does: documents of
 * databases that name no account (`system_config`, `accounts`, …) only reach the node through a
 * superduper admin's open database word, and an `Account-ID` in them must not hand them to that
 * account's own subscribers, whose keys would never have brought them.
 */
function accountOf(message: KazooMessage, routedDatabase: string): string | undefined {
  const database = typeof message.Database === 'string' ? message.Database : routedDatabase;
  return accountOfDatabase(database);
}

/** One literal word, with no wildcard character in it. */
function isLiteral(word: string | undefined): word is string {
  return word !== undefined && word !== '' && !word.includes('*');
}

/** `*`, or one literal word. */
function isWholeWordOrLiteral(word: string | undefined): boolean {
  return word === '*' || isLiteral(word);
}

/** Kazoo 4.x's texts (`bh_object:validate/2`), one per shape of the two words. */
function checkSupported(action: string, type: string): void {
  if (action === '*' && type === '*') return;
  if (type === '*') {
    if (!isAction(action)) throw new InvalidBindingError(`event ${action}.* not supported`);
    return;
  }
  if (action === '*') {
    if (!isType(type)) throw new InvalidBindingError(`event *.${type} not supported`);
    return;
  }
  if (!isAction(action) || !isType(type)) {
    throw new InvalidBindingError(`event ${action}.${type} not supported`);
  }
}
