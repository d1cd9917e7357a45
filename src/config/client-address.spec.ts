import type { IncomingMessage } from 'node:http';
import { TrustedProxies, clientAddress, normalizeAddress } from './client-address';

function request(peer: string, forwardedFor?: string | string[]): IncomingMessage {
  return {
    socket: { remoteAddress: peer },
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  } as unknown as IncomingMessage;
}

describe('clientAddress', () => {
  it('is the peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress(request('203.0.113.9', '198.51.100.1'), new TrustedProxies(''))).toBe(
      '203.0.113.9',
    );
  });

  it('normalizes IPv4-mapped IPv6 peers and IPv6 case', () => {
    expect(normalizeAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeAddress('FD00::1')).toBe('fd00::1');
    expect(clientAddress(request('::ffff:10.1.2.3'), new TrustedProxies(''))).toBe('10.1.2.3');
  });

  it('takes the right-most untrusted hop when the peer and the hops walked are trusted', () => {
    const proxies = new TrustedProxies('10.0.0.0/8, ::1');
    expect(clientAddress(request('10.0.0.1', 'spoofed, 198.51.100.7, 10.2.3.4'), proxies)).toBe(
      '198.51.100.7',
    );
    expect(clientAddress(request('::1', '2001:db8::5'), proxies)).toBe('2001:db8::5');
    expect(clientAddress(request('::ffff:10.0.0.1', ['198.51.100.8', '10.9.9.9']), proxies)).toBe(
      '198.51.100.8',
    );
  });

  it('ignores X-Forwarded-For from an untrusted peer', () => {
    const proxies = new TrustedProxies('10.0.0.0/8');
    expect(clientAddress(request('203.0.113.9', '10.0.0.5'), proxies)).toBe('203.0.113.9');
  });

  it('stops at a malformed hop or an exhausted header, at the last address it could vouch for', () => {
    const proxies = new TrustedProxies('10.0.0.0/8');
    expect(clientAddress(request('10.0.0.1', 'garbage, 10.0.0.2'), proxies)).toBe('10.0.0.2');
    expect(clientAddress(request('10.0.0.1'), proxies)).toBe('10.0.0.1');
    expect(clientAddress(request('10.0.0.1', '10.0.0.3'), proxies)).toBe('10.0.0.3');
  });
});

describe('TrustedProxies.problem', () => {
  it.each(['', '10.0.0.0/8', '192.0.2.1, ::1', 'fd00::/8', '::ffff:10.0.0.1'])(
    'accepts %j',
    (spec) => expect(TrustedProxies.problem(spec)).toBeUndefined(),
  );

  it.each(['10.0.0.0/33', 'fd00::/129', 'proxy.local', '10.0.0.1/8/1', '10.0.0.0/x'])(
    'rejects %j',
    (spec) => expect(TrustedProxies.problem(spec)).toEqual(expect.any(String)),
  );
});
