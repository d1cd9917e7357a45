import { Injectable } from '@nestjs/common';
import { ExchangeSubscription } from '../../amqp/family-subscription';
import {
  accountWord,
  ALL_ACCOUNTS,
  bindingId,
  isAccountId,
  textField,
  EventFamilyProvider,
  InvalidBindingError,
  invalidBindingFormat,
  accountOfDatabase,
  isModb,
  modbWindow,
  normalizeKazooJson,
  type BindingContext,
  type BrokerKey,
  type Delivery,
  type EventFamily,
  type FamilyBinding,
  type FamilyEvent,
  type KazooMessage,
} from '../../core';

/** Where Kazoo 4.x publishes fax status (a topic exchange; 3.x used a fanout named `fax`). */
export const FAX_STATUS_EXCHANGE = 'faxes';
/** Where Kazoo publishes document changes, fax documents included. */
export const FAX_DOCUMENT_EXCHANGE = 'configuration';

/** The document changes a `fax.object.<ACTION>` binding may name. */
export const FAX_DOC_ACTIONS = ['doc_created', 'doc_edited', 'doc_deleted'] as const;
export type FaxDocAction = (typeof FAX_DOC_ACTIONS)[number];

const isDocAction = (value: unknown): value is FaxDocAction =>
  typeof value === 'string' && (FAX_DOC_ACTIONS as readonly string[]).includes(value);

interface FaxStatusBinding extends FamilyBinding {
  readonly kind: 'status';
}

interface FaxObjectBinding extends FamilyBinding {
  readonly kind: 'object';
  readonly action: FaxDocAction | '*';
}

type FaxBinding = FaxStatusBinding | FaxObjectBinding;

/**
 * Fax events (`bh_fax`): client bindings `fax.status.<FAX_ID|*>` and `fax.object.<ACTION|*>`.
 *
 * Status comes from the `faxes` exchange, where Kazoo 4.x publishes
 * `fax.status.<AccountId>.<encoded Job-ID>`; one `fax.status.<ACCOUNT>.*` key per account serves
 * every fax id. Kazoo 3.x clients got these events as `fax.status` with normalized keys, so the
 * legacy payload is normalized too.
 *
 * Fax documents come from the `configuration` exchange as `<action>.<MODB>.fax.<encoded id>`.
 * Kazoo binds the MODB of the month the client subscribed in and never moves on (spec W14);
 * here the keys cover last, this and next month and are recomputed when the month changes.
 * The object family consumes the same exchange through a queue of its own, so releasing one
 * family's key never unbinds the other's (spec W9).
 */
@Injectable()
@EventFamilyProvider({ prefix: 'fax', monthlyKeys: true })
export class FaxFamily implements EventFamily<FaxBinding> {
  readonly availableBindings = ['fax.status.{FAX_ID}', 'fax.object.{ACTION}'];

  /**
   * Kazoo's two shapes, `[status, _]` and `[object, _]`, nothing else. A fax id may contain dots
   * (Kazoo's job ids do), but a wildcard inside it (`fax.status.x.*`) is refused.
   */
  parseBinding(binding: string): FaxBinding {
    const [, kind, ...rest] = binding.split('.');
    if (binding.includes('#')) throw invalidBindingFormat('fax', binding);
    if (kind === 'status') {
      const faxId = bindingId(rest.join('.'));
      if (faxId === undefined) throw invalidBindingFormat('fax', binding);
      // The account word is `*`: accounts are compared on their own, never through the pattern.
      return { binding, kind, pattern: `fax.status.*.${faxId}` };
    }
    if (kind === 'object' && rest.length === 1 && rest[0] !== '') {
      const [action] = rest;
      if (action !== '*' && !isDocAction(action)) {
        throw new InvalidBindingError(`event ${action} not supported`);
      }
      return { binding, kind, action, pattern: `${action}.*.fax.*` };
    }
    throw invalidBindingFormat('fax', binding);
  }

  /**
   * A superduper admin's `ALL_ACCOUNTS` gets `fax.status.*.*`, and `<action>.*.fax.*` for fax
   * documents: there is no month database of "every account", so the database word is open and
   * `describeDocument` keeps only faxes whose database names their account.
   */
  brokerKeys(binding: FaxBinding, context: BindingContext): BrokerKey[] {
    const account = accountWord(context.accountId);
    switch (binding.kind) {
      case 'status':
        return [{ exchange: FAX_STATUS_EXCHANGE, routingKey: `fax.status.${account}.*` }];
      case 'object': {
        const databases = account === ALL_ACCOUNTS ? ['*'] : modbWindow(account, context.now);
        return databases.map((modb) => ({
          exchange: FAX_DOCUMENT_EXCHANGE,
          routingKey: `${binding.action}.${modb}.fax.*`,
        }));
      }
    }
  }

  /** Fax status, from the `faxes` exchange. */
  @ExchangeSubscription(FAX_STATUS_EXCHANGE)
  describeStatus(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined {
    if (message['Event-Name'] !== 'status') return undefined;
    return {
      accountId: textField(message, 'Account-ID') ?? accountOfStatusKey(delivery.routingKey),
      key: delivery.routingKey,
      name: 'status',
      payload: message,
      legacyName: 'fax.status',
      // Kazoo 3.x's bh_fax sent `wh_json:normalize/1` of the message, unlike every other 3.x event.
      legacyPayload: normalizeKazooJson(message),
    };
  }

  /**
   * Only fax documents of an account's month database are fax events. The node's
   * `configuration` queue also carries other families' documents, and a superduper admin's
   * `<action>.*.fax.*` key brings faxes of any database: a document whose database names no
   * account has no tenant this family could vouch for, whatever its `Account-ID` says.
   */
  @ExchangeSubscription(FAX_DOCUMENT_EXCHANGE)
  describeDocument(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined {
    const name = message['Event-Name'];
    const database = message.Database;
    if (!isDocAction(name) || message.Type !== 'fax') return undefined;
    if (typeof database !== 'string' || !isModb(database)) return undefined;
    const accountId = accountOfDatabase(database);
    if (accountId === undefined) return undefined;
    return {
      accountId,
      key: delivery.routingKey,
      name,
      payload: message,
      // Kazoo 3.x named document events `<Event-Name>_<Type>` (`doc_created_user`).
      legacyName: `${name}_fax`,
    };
  }
}

/**
 * `fax.status.<AccountId>.<Job-ID>`: Kazoo puts `*` in the account word when the message has no
 * `Account-ID`, which is no account at all.
 */
function accountOfStatusKey(routingKey: string): string | undefined {
  const account = routingKey.split('.')[2];
  return isAccountId(account) ? account : undefined;
}
