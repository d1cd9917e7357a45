import { connectionLog, isLogRecord, recordText } from './log-record';

describe('log records', () => {
  it('carry the connection and the request as fields', () => {
    expect(connectionLog('abc', 'request refused: bad_request', { request_id: 'r-1' })).toEqual({
      msg: 'request refused: bad_request',
      connection: 'abc',
      request_id: 'r-1',
    });
    expect(isLogRecord(connectionLog('abc', 'x'))).toBe(true);
    expect(isLogRecord('x')).toBe(false);
    expect(isLogRecord(null)).toBe(false);
    expect(isLogRecord({ msg: 3 })).toBe(false);
  });

  it('read in text as the gateway always wrote them', () => {
    expect(recordText(connectionLog('abc', 'dropped as a slow consumer'))).toBe(
      'session abc: dropped as a slow consumer',
    );
    expect(recordText({ msg: 'plain' })).toBe('plain');
    expect(recordText(connectionLog('abc', 'failed', { request_id: 'r-1' }))).toBe(
      'session abc: failed (request r-1)',
    );
  });

  it('cannot forge a text line through a client-chosen request id', () => {
    const text = recordText(connectionLog('abc', 'failed', { request_id: 'x\nforged line' }));
    expect(text).not.toContain('\n');
    expect(text).toContain('"x\\nforged line"');
  });
});
