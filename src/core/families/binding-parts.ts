import { InvalidAccountError, InvalidBindingError, invalidBindingFormat } from '../errors';
import { isAccountId } from '../kazoo/account-databases';
import { normalizeClientId } from '../topics/routing-key-encoding';
import { ALL_ACCOUNTS } from './event-family';

/*
 * The grammar rule every family follows: `*` and `#` are AMQP wildcards, so they may only ever
 * be a whole word, and only where the family's grammar offers "every …". Anywhere else (inside an
 * id, after an id, `#` at all) they would either widen the broker key or silently match nothing,
 * so the binding is refused as Kazoo's "invalid format".
 */

/**
 * Reads an id a client put into a binding: `*` (every id), or a literal id returned encoded the
 * way Kazoo publishes it. Ids may contain dots (SIP Call-IDs such as `abc@10.1.0.5`, fax job
 * ids). `undefined` when the id is empty or holds a wildcard character anywhere but as the whole
 * id (`ab*c`, `abc.*`, `#`).
 */
export function bindingId(id: string): string | undefined {
  if (id === '*') return '*';
  if (id === '' || /[*#]/.test(id)) return undefined;
  return normalizeClientId(id);
}

/** The grammar of a `<prefix>.<WORD>.<ID|*>` binding, for `wordAndId`. */
export interface WordAndIdGrammar<W extends string> {
  /** The words the second slot may hold; any other is Kazoo's `event <WORD> not supported`. */
  readonly words: readonly W[];
  /** `*` may stand for every word (`call.*.<CALL_ID>`). */
  readonly anyWord?: boolean;
  /**
   * Judge the word before the shape, as Kazoo's `bh_presence` does: there `presence.foo.*.*` is
   * `event foo not supported`, while `bh_call` answers `call.FOO.*.*` with "invalid format".
   */
  readonly wordFirst?: boolean;
}

/**
 * Parses the common `<prefix>.<WORD>.<ID|*>` binding (`call.CHANNEL_CREATE.<CALL_ID>`) in one
 * line, with Kazoo's texts: a missing word or id, a `#` anywhere or a wildcard inside the id is
 * `invalid format for <family> subscription : …`; a word outside `grammar.words` is
 * `event <WORD> not supported`. The id is everything after the word, so it may contain dots,
 * and comes back encoded as Kazoo publishes it, or `*`.
 *
 * ```ts
 * const { word: event, id } = wordAndId('call', binding, { words: CALL_EVENTS, anyWord: true });
 * ```
 */
export function wordAndId<W extends string>(
  family: string,
  binding: string,
  grammar: WordAndIdGrammar<W> & { readonly anyWord: true },
): { word: W | '*'; id: string };
export function wordAndId<W extends string>(
  family: string,
  binding: string,
  grammar: WordAndIdGrammar<W>,
): { word: W; id: string };
export function wordAndId<W extends string>(
  family: string,
  binding: string,
  grammar: WordAndIdGrammar<W>,
): { word: W | '*'; id: string } {
  const [, word, ...rest] = binding.split('.');
  if (word === undefined || word === '' || binding.includes('#')) {
    throw invalidBindingFormat(family, binding);
  }
  const isWord = (value: string): value is W | '*' =>
    (grammar.anyWord === true && value === '*') ||
    (grammar.words as readonly string[]).includes(value);
  if (grammar.wordFirst && !isWord(word)) throw unsupportedEvent(word);
  const id = bindingId(rest.join('.'));
  if (id === undefined) throw invalidBindingFormat(family, binding);
  if (!isWord(word)) throw unsupportedEvent(word);
  return { word, id };
}

/** Kazoo's text for a word outside a family's list (`bh_call`, `bh_presence`). */
function unsupportedEvent(word: string): InvalidBindingError {
  return new InvalidBindingError(`event ${word} not supported`);
}

/**
 * The account word of a broker key or subscription key: `*` for a superduper admin's
 * `ALL_ACCOUNTS` subscription, else the account id itself. Anything else is refused rather than
 * put into a key, where a `*`, `#` or `.` would widen it to other accounts.
 */
export function accountWord(accountId: string): string {
  if (accountId === ALL_ACCOUNTS || isAccountId(accountId)) return accountId;
  throw new InvalidAccountError('invalid account id');
}
