import type { IncomingMessage, ServerResponse } from 'node:http';
import { acceptRequestId, requestIds, type IdentifiedRequest } from './request-id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it("keeps a client's id when it is a safe token", () => {
    expect(acceptRequestId('abc-123_XYZ')).toBe('abc-123_XYZ');
    expect(acceptRequestId('x'.repeat(64))).toBe('x'.repeat(64));
    expect(acceptRequestId(['first-one', 'second'])).toBe('first-one');
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['too long', 'x'.repeat(65)],
    ['with spaces', 'a b'],
    ['with a line break', 'a\nb'],
    ['with markup', '<script>'],
    ['with a dot or a slash', '../etc'],
    ['an empty list', []],
  ])('makes a random one when the offered id is %s', (_case, offered) => {
    const id = acceptRequestId(offered);
    expect(id).toMatch(UUID);
    expect(acceptRequestId(offered)).not.toBe(id);
  });

  it('sets the id on the request and echoes it in X-Request-Id', () => {
    const headers: Record<string, string> = {};
    const request = { headers: { 'x-request-id': 'from-proxy' } } as unknown as IdentifiedRequest;
    const response = {
      setHeader: (name: string, value: string) => (headers[name] = value),
    } as unknown as ServerResponse;
    const next = jest.fn();
    requestIds(request, response, next);
    expect(request.id).toBe('from-proxy');
    expect(headers['X-Request-Id']).toBe('from-proxy');
    expect(next).toHaveBeenCalledTimes(1);

    const unnamed = { headers: {} } as IncomingMessage;
    requestIds(unnamed, response, next);
    expect(headers['X-Request-Id']).toMatch(UUID);
  });
});
