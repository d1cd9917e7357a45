/**
 * What amqplib tells about a failed broker operation. When the broker closes a channel because
 * of an operation, the promise of that very operation rejects with the close's reply code and
 * a message starting with "Operation failed"; every other operation queued on the channel
 * rejects without a code ("Channel ended, no reply will be forthcoming"), although nothing was
 * wrong with it.
 */
export interface BrokerRefusal {
  /** AMQP reply code: 403 access refused, 404 not found, 406 precondition failed, … */
  readonly code: number;
  /** The broker's own words, e.g. `NOT_FOUND - no exchange 'callevt' in vhost '/'`. */
  readonly reason: string;
}

export const ACCESS_REFUSED = 403;
export const NOT_FOUND = 404;
export const PRECONDITION_FAILED = 406;

/** The broker's refusal of the operation that rejected with `error`, if that is what it was. */
export function refusalOf(error: unknown): BrokerRefusal | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as Error & { code?: unknown }).code;
  if (typeof code !== 'number' || !error.message.startsWith('Operation failed')) return undefined;
  const quoted = /with message "(.*)"$/s.exec(error.message);
  return { code, reason: quoted ? quoted[1] : error.message };
}

/** True when a 404 is about the exchange, not the queue (both are reported as NOT_FOUND). */
export function isMissingExchange(refusal: BrokerRefusal, exchange: string): boolean {
  return refusal.code === NOT_FOUND && refusal.reason.includes(`exchange '${exchange}'`);
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Why a connection attempt failed, in an operator's words: unreachable (and why), refused
 * login, refused vhost, or the library's own text when it is none of those.
 */
export function describeConnectFailure(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  switch (code) {
    case 'ECONNREFUSED':
      return `unreachable: connection refused (${text})`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `unreachable: host name not resolved (${text})`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `unreachable: ${text}`;
    case 'ECONNRESET':
      return `connection reset during the handshake (is it an AMQP port? ${text})`;
  }
  if (/ACCESS.REFUSED/.test(text)) {
    return `authentication failed: the broker refused AMQP_URL's user name or password (${text})`;
  }
  if (/NOT.ALLOWED|vhost/i.test(text)) {
    return `refused: the user may not open AMQP_URL's vhost (${text})`;
  }
  return text;
}
