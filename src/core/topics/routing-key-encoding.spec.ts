import { encodeRoutingWord, normalizeClientId } from './routing-key-encoding';

describe('encodeRoutingWord (kz_amqp_util:encode/1)', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['', ''],
    ['*', '*'],
    ['#', '#'],
    ['abcXYZ019', 'abcXYZ019'],
    ['a-b~c_d', 'a-b~c_d'],
    ['a b', 'a+b'],
    ['a.b', 'a%2Eb'],
    ['abc@10.0.0.1', 'abc%4010%2E0%2E0%2E1'],
    ['+', '%2B'],
    ['%', '%25'],
    ['/', '%2F'],
    [':', '%3A'],
    ['a*b', 'a%2Ab'],
    ['a#b', 'a%23b'],
    ['**', '%2A%2A'],
    ['\n', '%0A'],
    ['\u007f', '%7F'],
    // UTF-8 multi-byte characters are escaped byte by byte, upper-case hex
    ['é', '%C3%A9'],
    ['€', '%E2%82%AC'],
    ['😀', '%F0%9F%98%80'],
    ['ü z', '%C3%BC+z'],
  ];

  it.each(cases)('%j -> %j', (word, expected) => {
    expect(encodeRoutingWord(word)).toBe(expected);
  });

  it('never leaves a dot, so an encoded word is exactly one routing-key word', () => {
    const encoded = encodeRoutingWord('a.b.c.d');
    expect(encoded).toBe('a%2Eb%2Ec%2Ed');
    expect(encoded.split('.')).toHaveLength(1);
  });

  it('uses upper-case hex digits', () => {
    expect(encodeRoutingWord('\u00ff')).toBe('%C3%BF');
    expect(encodeRoutingWord('[')).toBe('%5B');
  });
});

describe('normalizeClientId', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    // raw ids are encoded
    ['abc@10.0.0.1', 'abc%4010%2E0%2E0%2E1'],
    ['a b', 'a+b'],
    ['é', '%C3%A9'],
    ['100%', '100%25'],
    ['%4', '%254'],
    ['%zz', '%25zz'],
    // ids the client already encoded are kept
    ['abc%4010%2E0%2E0%2E1', 'abc%4010%2E0%2E0%2E1'],
    ['a+b', 'a+b'],
    ['%C3%A9', '%C3%A9'],
    ['plain-id_1~', 'plain-id_1~'],
    ['abc%40', 'abc%40'],
    // lower-case hex is not Kazoo's encoding, so it is treated as raw
    ['abc%2e', 'abc%252e'],
  ];

  it.each(cases)('%j -> %j', (id, expected) => {
    expect(normalizeClientId(id)).toBe(expected);
  });

  it.each(['abc@10.0.0.1', 'call id with spaces', 'ünïcode.id', 'x/y:z'])(
    'raw and encoded forms of %j give the same result',
    (raw) => {
      const encoded = encodeRoutingWord(raw);
      expect(encoded).not.toBe(raw);
      expect(normalizeClientId(raw)).toBe(encoded);
      expect(normalizeClientId(encoded)).toBe(encoded);
    },
  );
});
