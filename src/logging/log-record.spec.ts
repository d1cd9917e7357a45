import { secretTag } from '../core/secret-tag';
import { connectionLog, connectionName, isLogRecord, recordText } from './log-record';

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

  it('name a session by its log name, or by a tag when its id may be a credential', () => {
    expect(connectionName({ id: 'ws-uuid', logName: 'ws-uuid' })).toBe('ws-uuid');
    expect(connectionName({ id: 'legacy-sid-0.9' })).toBe(secretTag('legacy-sid-0.9'));
    expect(connectionName({ id: 'legacy-sid-0.9' })).not.toContain('legacy');
  });
});
