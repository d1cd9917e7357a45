const UNRESERVED = /^[A-Za-z0-9\-~_]$/;

/**
 * Encodes one routing-key word the way Kazoo's `kz_amqp_util:encode/1` does, so ids supplied by
 * clients (a call-id like `abc@10.0.0.1`) compare equal to the words Kazoo publishes
 * (`abc%4010%2E0%2E0%2E1`). `*`, `#` and the empty word pass through unchanged.
 */
export function encodeRoutingWord(word: string): string {
  if (word === '' || word === '*' || word === '#') return word;
  let encoded = '';
  for (const byte of Buffer.from(word, 'utf8')) {
    const char = String.fromCharCode(byte);
    if (byte < 0x80 && UNRESERVED.test(char)) encoded += char;
    else if (char === ' ') encoded += '+';
    else encoded += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

const ALREADY_ENCODED = /^(?:[A-Za-z0-9\-~_+]|%[0-9A-F]{2})*$/;

/**
 * Normalizes an id a client put into a binding: raw ids are encoded, ids the client already
 * encoded (as Kazoo publishes them) are kept, so both `abc@10.0.0.1` and `abc%4010%2E0%2E0%2E1`
 * select the same call.
 */
export function normalizeClientId(id: string): string {
  return ALREADY_ENCODED.test(id) ? id : encodeRoutingWord(id);
}
