import type { IncomingMessage } from 'node:http';
import { loadEnvironment } from '../../config/environment';
import { ConnectionAdmission, type ConnectionTicket } from './connection-admission';

function request(peer: string, forwardedFor?: string): IncomingMessage {
  return {
    socket: { remoteAddress: peer },
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  } as unknown as IncomingMessage;
}

function admission(env: Record<string, string>): ConnectionAdmission {
  return new ConnectionAdmission(loadEnvironment(env));
}

function admitted(admission: ConnectionAdmission, req: IncomingMessage): ConnectionTicket {
  const result = admission.admit(req);
  if (!result.admitted) throw new Error(`refused: ${result.refusal.message}`);
  return result.ticket;
}

describe('ConnectionAdmission', () => {
  it('refuses past MAX_CONNECTIONS_PER_IP with 429 and admits again once one is released', () => {
    const gate = admission({ MAX_CONNECTIONS_PER_IP: '2' });
    const first = admitted(gate, request('192.0.2.1'));
    admitted(gate, request('::ffff:192.0.2.1'));
    expect(gate.admit(request('192.0.2.1'))).toMatchObject({
      admitted: false,
      refusal: { status: 429 },
    });
    admitted(gate, request('192.0.2.2'));
    first.release();
    admitted(gate, request('192.0.2.1'));
    expect(gate.counts()).toEqual({ total: 3, refused_per_ip: 1, refused_total: 0 });
  });

  it('refuses every new connection with 503 shutting down once the node stops, and still releases open ones', () => {
    const gate = admission({});
    const open = admitted(gate, request('192.0.2.1'));
    gate.stopAdmitting();
    expect(gate.admit(request('192.0.2.9'))).toEqual({
      admitted: false,
      refusal: { status: 503, message: 'shutting down' },
    });
    open.release();
    expect(gate.counts().total).toBe(0);
  });

  it('refuses past MAX_CONNECTIONS with 503', () => {
    const gate = admission({ MAX_CONNECTIONS: '1' });
    admitted(gate, request('192.0.2.1'));
    expect(gate.admit(request('192.0.2.2'))).toMatchObject({
      admitted: false,
      refusal: { status: 503, message: 'too many connections' },
    });
    expect(gate.counts().refused_total).toBe(1);
  });

  it('counts a ticket released many times once, and returns to zero', () => {
    const gate = admission({});
    const tickets = Array.from({ length: 50 }, (_, i) =>
      admitted(gate, request(`192.0.2.${i % 5}`)),
    );
    for (const ticket of tickets) {
      ticket.release();
      ticket.release();
    }
    expect(gate.counts().total).toBe(0);
    expect(gate.openFrom('192.0.2.1')).toBe(0);
  });

  it('counts the client named by a trusted proxy, and the proxy itself otherwise', () => {
    const trusting = admission({ MAX_CONNECTIONS_PER_IP: '1', TRUSTED_PROXIES: '127.0.0.1' });
    admitted(trusting, request('127.0.0.1', '198.51.100.1'));
    admitted(trusting, request('127.0.0.1', '198.51.100.2'));
    expect(trusting.admit(request('127.0.0.1', '198.51.100.2')).admitted).toBe(false);

    const wary = admission({ MAX_CONNECTIONS_PER_IP: '1' });
    admitted(wary, request('127.0.0.1', '198.51.100.1'));
    expect(wary.admit(request('127.0.0.1', '198.51.100.2')).admitted).toBe(false);
  });

  it('hands the ticket of a request to whoever accepts it later', () => {
    const gate = admission({});
    const req = request('192.0.2.1');
    const ticket = admitted(gate, req);
    expect(gate.ticketOf(req)).toBe(ticket);
    expect(ticket.clientAddress).toBe('192.0.2.1');
  });
});
