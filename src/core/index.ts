/**
 * The public extension API: everything a family module (built-in or third-party) needs.
 * Family modules import from here and `ExchangeSubscription` from `amqp/family-subscription`,
 * nothing else in `src`.
 */
export { ALL_ACCOUNTS } from './families/event-family';
export type {
  BindingContext,
  BrokerKey,
  Delivery,
  DescribeMessage,
  EventFamily,
  EventFamilyOptions,
  FamilyBinding,
  FamilyEvent,
  KazooMessage,
} from './families/event-family';
export { EventFamilyProvider } from './families/event-family.decorator';
export { accountWord, bindingId, wordAndId, type WordAndIdGrammar } from './families/binding-parts';
export { isKazooMessage } from './events/event-ingress';
export { encodeRoutingWord, normalizeClientId } from './topics/routing-key-encoding';
export { topicMatches } from './topics/topic-matcher';
export { ErrorCode, GatewayError, InvalidBindingError, invalidBindingFormat } from './errors';
export { channelVarsAccountId, textField } from './kazoo/message-fields';
export {
  accountDb,
  accountModb,
  accountOfDatabase,
  isAccountId,
  isModb,
  modbWindow,
} from './kazoo/account-databases';
export { normalizeKazooJson, publicFields } from './kazoo/normalize';
// For families whose keys depend on facts that change while subscriptions live (presence
// realms): the time source, the live subscriptions and the broker bindings they hold.
export { Clock } from './clock';
export { SubscriptionRegistry } from './subscriptions/subscription.registry';
export { BROKER_BINDINGS, type BrokerBindings } from './subscriptions/ports';
