import { invalidBindingFormat } from '../errors';
import { normalizeClientId } from '../topics/routing-key-encoding';

/**
 * Reads the common `<prefix>.<word>.<id>` shape (`call.CHANNEL_CREATE.<CALL_ID>`): the id is
 * everything after the word, so it may contain dots, and comes back encoded the way Kazoo
 * publishes it, or `*`. A missing word or id, or a `#` anywhere, is Kazoo's "invalid format".
 */
export function wordAndId(family: string, binding: string): { word: string; id: string } {
  const [, word, ...rest] = binding.split('.');
  const id = rest.join('.');
  if (word === undefined || word === '' || id === '' || binding.includes('#')) {
    throw invalidBindingFormat(family, binding);
  }
  return { word, id: id === '*' ? '*' : normalizeClientId(id) };
}
