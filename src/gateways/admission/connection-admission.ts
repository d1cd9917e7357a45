import type { IncomingMessage } from 'node:http';
import { Injectable, Logger } from '@nestjs/common';
import { Environment } from '../../config/environment';
import { TrustedProxies, clientAddress } from '../../config/client-address';

/** A connection admitted and counted; `release` uncounts it, however often it is called. */
export interface ConnectionTicket {
  readonly clientAddress: string;
  release(): void;
}

/** Why a connection was turned away, as an HTTP answer: 503 node full, 429 this address full. */
export interface AdmissionRefusal {
  readonly status: 429 | 503;
  readonly message: string;
}

export type Admission =
  | { readonly admitted: true; readonly ticket: ConnectionTicket }
  | { readonly admitted: false; readonly refusal: AdmissionRefusal };

export interface ConnectionCounts {
  readonly total: number;
  readonly refused_per_ip: number;
  readonly refused_total: number;
}

export const NODE_FULL: AdmissionRefusal = { status: 503, message: 'too many connections' };
export const SHUTTING_DOWN: AdmissionRefusal = { status: 503, message: 'shutting down' };
export const ADDRESS_FULL: AdmissionRefusal = {
  status: 429,
  message: 'too many connections from this address',
};

class Ticket implements ConnectionTicket {
  private released = false;

  constructor(
    readonly clientAddress: string,
    private readonly admission: ConnectionAdmission,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.admission.uncount(this.clientAddress);
  }
}

/**
 * One count of open connections for every protocol, total (`MAX_CONNECTIONS`) and per client
 * address (`MAX_CONNECTIONS_PER_IP`). Transports ask before they do any work for a connection
 * and release its ticket when it ends. Refusals are logged at debug only: a flood of them would
 * otherwise flood the log.
 */
@Injectable()
export class ConnectionAdmission {
  private readonly logger = new Logger(ConnectionAdmission.name);
  private readonly proxies: TrustedProxies;
  private readonly perAddress = new Map<string, number>();
  private readonly tickets = new WeakMap<IncomingMessage, ConnectionTicket>();
  private total = 0;
  private refusedPerIp = 0;
  private refusedTotal = 0;
  private closed = false;

  constructor(private readonly env: Environment) {
    this.proxies = new TrustedProxies(env.TRUSTED_PROXIES);
  }

  /** Counts the connection `request` opens, or says why it may not open. */
  admit(request: IncomingMessage): Admission {
    const address = clientAddress(request, this.proxies);
    if (this.closed) return { admitted: false, refusal: SHUTTING_DOWN };
    if (this.total >= this.env.MAX_CONNECTIONS) {
      this.refusedTotal += 1;
      this.logger.debug(`refused ${address}: ${this.total} connections open`);
      return { admitted: false, refusal: NODE_FULL };
    }
    const open = this.perAddress.get(address) ?? 0;
    if (open >= this.env.MAX_CONNECTIONS_PER_IP) {
      this.refusedPerIp += 1;
      this.logger.debug(`refused ${address}: ${open} connections open from it`);
      return { admitted: false, refusal: ADDRESS_FULL };
    }
    this.perAddress.set(address, open + 1);
    this.total += 1;
    const ticket = new Ticket(address, this);
    this.tickets.set(request, ticket);
    return { admitted: true, ticket };
  }

  /**
   * From now on every new connection is refused (503 `shutting down`): the node is stopping, and
   * a client turned away here reconnects to another node at once rather than being dropped later.
   */
  stopAdmitting(): void {
    this.closed = true;
  }

  /** The ticket `admit` gave for `request`, for transports that admit and accept apart. */
  ticketOf(request: IncomingMessage): ConnectionTicket | undefined {
    return this.tickets.get(request);
  }

  counts(): ConnectionCounts {
    return {
      total: this.total,
      refused_per_ip: this.refusedPerIp,
      refused_total: this.refusedTotal,
    };
  }

  /** Open connections from `address` (tests and diagnostics). */
  openFrom(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  /** @internal Called once per ticket by `Ticket.release`. */
  uncount(address: string): void {
    this.total -= 1;
    const open = (this.perAddress.get(address) ?? 1) - 1;
    if (open <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, open);
  }
}

/** The answer to an upgrade refused before the WebSocket handshake. */
export function refuseUpgrade(refusal: AdmissionRefusal): string {
  const reason = refusal.status === 429 ? 'Too Many Requests' : 'Service Unavailable';
  return (
    `HTTP/1.1 ${refusal.status} ${reason}\r\nConnection: close\r\n` +
    `Content-Type: text/plain; charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(refusal.message)}\r\n\r\n` +
    refusal.message
  );
}
