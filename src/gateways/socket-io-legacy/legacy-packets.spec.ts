import {
  ackPacket,
  decodePacket,
  decodePayload,
  encodePayload,
  eventPacket,
} from './legacy-packets';

describe('socket.io 0.9 packets', () => {
  it.each([
    ['2::', { type: 'heartbeat', id: undefined, ackWithData: false, endpoint: '', data: '' }],
    ['0::', { type: 'disconnect', id: undefined, ackWithData: false, endpoint: '', data: '' }],
    [
      '1::/chat',
      { type: 'connect', id: undefined, ackWithData: false, endpoint: '/chat', data: '' },
    ],
    [
      '5:1+::{"name":"subscribe","args":[{"a":1}]}',
      {
        type: 'event',
        id: '1',
        ackWithData: true,
        endpoint: '',
        data: '{"name":"subscribe","args":[{"a":1}]}',
      },
    ],
    [
      '5:7::{"name":"x"}',
      { type: 'event', id: '7', ackWithData: false, endpoint: '', data: '{"name":"x"}' },
    ],
    [
      '3:::hello: world',
      { type: 'message', id: undefined, ackWithData: false, endpoint: '', data: 'hello: world' },
    ],
    ['8::', { type: 'noop', id: undefined, ackWithData: false, endpoint: '', data: '' }],
  ])('decodes %s', (text, packet) => {
    expect(decodePacket(text)).toEqual(packet);
  });

  it.each(['', 'hello', '9::', '5', 'x:1::{}'])('refuses %j', (text) => {
    expect(decodePacket(text)).toBeUndefined();
  });

  it('frames several packets and reads them back, counting UTF-16 code units', () => {
    const packets = ['2::', '5:::{"name":"é€","args":{}}', '8::'];
    const body = encodePayload(packets);
    expect(body).toBe(
      `\ufffd3\ufffd2::\ufffd${packets[1].length}\ufffd${packets[1]}\ufffd3\ufffd8::`,
    );
    expect(decodePayload(body)).toEqual(packets);
    expect(encodePayload(['2::'])).toBe('2::');
    expect(decodePayload('2::')).toEqual(['2::']);
  });

  it('gives up on broken framing', () => {
    expect(decodePayload('\ufffd10\ufffd2::')).toEqual([]);
    expect(decodePayload('\ufffdx\ufffd2::')).toEqual([]);
    expect(decodePayload('\ufffd3')).toEqual([]);
  });

  it('encodes events with the bare payload and acks with or without data', () => {
    expect(eventPacket('CHANNEL_CREATE', { 'Call-ID': 'x' })).toBe(
      '5:::{"name":"CHANNEL_CREATE","args":{"Call-ID":"x"}}',
    );
    expect(ackPacket('3')).toBe('6:::3');
    expect(ackPacket('4', [{ status: 'success' }])).toBe('6:::4+[{"status":"success"}]');
  });
});
