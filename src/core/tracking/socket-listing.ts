import { randomBytes } from 'node:crypto';
import { ALL_ACCOUNTS } from '../families/event-family';
import type { Session, Subscription } from '../session';
import type { SubscriptionRegistry } from '../subscriptions/subscription.registry';

/** Seconds from 0000-01-01 (Kazoo's Gregorian calendar) to the Unix epoch. */
export const GREGORIAN_UNIX_OFFSET_S = 62_167_219_200;

/** Kazoo's `timestamp` of a socket: Gregorian seconds (`kz_time:now_s/0`). */
export function gregorianSeconds(epochMs: number): number {
  return Math.floor(epochMs / 1000) + GREGORIAN_UNIX_OFFSET_S;
}

/**
 * One socket as Kazoo 4.3's tracking answers for it (`blackhole_tracking:to_resp_data/1`): never
 * a token, nor the transport's own session id (a 0.9 session id is the session's credential).
 */
export interface SocketDescription {
  /** Random, given by the listing the first time it sees the session; not `ip:port` (W7). */
  websocket_session_id: string;
  bindings: string[];
  /** When the connection opened, in Gregorian seconds as Kazoo gives it. */
  timestamp: number;
  /** The node's public id, never its host name. */
  destination: string;
  /** The client's address as the node saw it. */
  source: string | undefined;
  protocol: string | undefined;
  name?: unknown;
  metadata?: unknown;
}

/** A description plus the accounts it concerns, which only node-to-node answers carry. */
export interface ScopedSocketDescription extends SocketDescription {
  /** Accounts the socket is subscribed to (`*` for a superduper subscription). */
  account_ids: string[];
  /** Accounts of the tokens that made its subscriptions. */
  auth_account_ids: string[];
}

export interface ListingQuery {
  /** A socket matches when one of its subscriptions was made by a token of one of these. */
  readonly authAccountIds: readonly string[];
  /** A socket also matches when it is subscribed to one of these. */
  readonly subscribedAccountIds?: readonly string[];
  /** Only that socket, when given. */
  readonly socketId?: string;
}

/**
 * The node's sockets for `websockets.get` and `GET /v2/accounts/{id}/websockets`, read from the
 * subscription registry: a socket is listed while it holds subscriptions, as Kazoo lists a
 * context once a subscription set its `auth_account_id`.
 */
export class SocketListing {
  /** Public ids, given lazily and forgotten with the session. */
  private readonly publicIds = new WeakMap<Session, string>();

  constructor(
    private readonly registry: SubscriptionRegistry,
    private readonly destination: string,
  ) {}

  /**
   * Kazoo 4.3's filter (sockets whose auth account is the request's `Account-ID` or
   * `Auth-Account-ID`), and by socket id only among those: a socket id alone is no ownership
   * (Kazoo returns any socket by id, W7).
   */
  list(query: ListingQuery): ScopedSocketDescription[] {
    const wanted = new Set(query.authAccountIds);
    const watched = new Set(query.subscribedAccountIds ?? []);
    const found: ScopedSocketDescription[] = [];
    for (const [session, subscriptions] of this.registry.sessions()) {
      const authAccounts = unique(subscriptions.flatMap((s) => s.authAccountId ?? []));
      const matches =
        authAccounts.some((account) => wanted.has(account)) ||
        subscriptions.some((s) => watched.has(s.accountId));
      if (!matches) continue;
      const id = this.publicIdOf(session);
      if (query.socketId !== undefined && id !== query.socketId) continue;
      found.push(this.describe(id, session, subscriptions, authAccounts));
    }
    return found;
  }

  private describe(
    id: string,
    session: Session,
    subscriptions: readonly Subscription[],
    authAccountIds: string[],
  ): ScopedSocketDescription {
    const origin = session.origin;
    const described: ScopedSocketDescription = {
      websocket_session_id: id,
      bindings: unique(subscriptions.map((s) => s.binding.binding)),
      timestamp: gregorianSeconds(origin?.connectedAt ?? Date.now()),
      destination: this.destination,
      source: origin?.source,
      protocol: origin?.protocol,
      account_ids: unique(subscriptions.map((s) => s.accountId)),
      auth_account_ids: authAccountIds,
    };
    // Kazoo keeps the name and metadata of the latest subscribe that gave them.
    const labelled = [...subscriptions].reverse();
    const name = labelled.find((s) => s.name !== undefined)?.name;
    const metadata = labelled.find((s) => s.metadata !== undefined)?.metadata;
    if (name !== undefined) described.name = name;
    if (metadata !== undefined) described.metadata = metadata;
    return described;
  }

  private publicIdOf(session: Session): string {
    let id = this.publicIds.get(session);
    if (id === undefined) {
      id = randomBytes(16).toString('hex');
      this.publicIds.set(session, id);
    }
    return id;
  }
}

/** What Kazoo's Crossbar gets: the description without the accounts. */
export function kazooShaped({
  account_ids: _accounts,
  auth_account_ids: _authAccounts,
  ...description
}: ScopedSocketDescription): SocketDescription {
  return description;
}

/** True when the socket watches every account: only a superduper admin may see it listed. */
export function watchesAllAccounts(socket: Pick<ScopedSocketDescription, 'account_ids'>): boolean {
  return socket.account_ids.includes(ALL_ACCOUNTS);
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
