import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

interface TokenRecord {
  accountId: string;
  exp: number;
}

/** What `addAccount` may set on an account besides its place in the tree. */
export interface StandInAccountOptions {
  /** The SIP realm of the account document; `<first 8 id characters>.sip.example.com` by default. */
  readonly realm?: string;
  /** The account's name; `account <first 6 id characters>` by default. */
  readonly name?: string;
  /**
   * Kazoo's `pvt_superduper_admin`: the system administrators' account. Crossbar lets its tokens
   * read every account and shows the flag as `superduper_admin` in the account document.
   */
  readonly superduperAdmin?: boolean;
}

/** What the stand-in does instead of answering normally. */
export type CrossbarFault = { status: number } | 'hang' | undefined;

/** A new random Kazoo-style account id (32 lower-case hex characters). */
export function newAccountId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * A small HTTP stand-in for Crossbar (Kazoo's REST API) that answers `GET /v2/token_auth` and
 * `GET /v2/accounts/{id}` with Crossbar's real response envelopes (spec §6.3) over real HTTP.
 * Accounts form a tree; a token may read its own account and every descendant, as Crossbar's
 * `cb_simple_authz` allows, and a superduper admin's token every account.
 *
 * `npm run demo` runs the gateway against it; the tests use it as `FakeCrossbar`. It lives in
 * `src/` for the demo's sake, and nothing that `npm start` loads may import it.
 */
export class CrossbarStandIn {
  private readonly parents = new Map<string, string | undefined>();
  private readonly profiles = new Map<string, StandInAccountOptions>();
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly sockets = new Set<Socket>();
  private fault: CrossbarFault;
  /** Requests received, by path without query: lets tests assert caching and single-flight. */
  readonly hits = new Map<string, number>();

  private constructor(
    private server: Server,
    private port: number,
  ) {}

  static async start(port = 0): Promise<CrossbarStandIn> {
    const crossbar = new CrossbarStandIn(createServer(), port);
    await crossbar.listen();
    return crossbar;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/v2`;
  }

  addAccount(
    accountId = newAccountId(),
    parentId?: string,
    options: StandInAccountOptions = {},
  ): string {
    this.parents.set(accountId, parentId);
    this.profiles.set(accountId, options);
    return accountId;
  }

  /**
   * Gives `accountId` another SIP realm from now on, as an administrator editing the account
   * document would (a realm may be taken from one account and given to another).
   */
  setRealm(accountId: string, realm: string): void {
    if (!this.parents.has(accountId)) throw new Error(`no account ${accountId}`);
    this.profiles.set(accountId, { ...this.profiles.get(accountId), realm });
  }

  /** The realm `GET /v2/accounts/{accountId}` answers with. */
  realmOf(accountId: string): string {
    return this.profiles.get(accountId)?.realm ?? `${accountId.slice(0, 8)}.sip.example.com`;
  }

  /** The name `GET /v2/accounts/{accountId}` and `token_auth` answer with. */
  private nameOf(accountId: string): string {
    return this.profiles.get(accountId)?.name ?? `account ${accountId.slice(0, 6)}`;
  }

  /** Issues a JWT-shaped token like Kazoo 4.x does; `ttlS` sets its `exp`. */
  issueToken(accountId: string, ttlS = 3600): string {
    const exp = Math.floor(Date.now() / 1000) + ttlS;
    const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'test' })).toString(
      'base64url',
    );
    const claims = Buffer.from(
      JSON.stringify({
        account_id: accountId,
        owner_id: randomUUID().replace(/-/g, ''),
        method: 'cb_user_auth',
        exp,
        iss: 'kazoo',
      }),
    ).toString('base64url');
    const token = `${header}.${claims}.${randomBytes(32).toString('base64url')}`;
    this.tokens.set(token, { accountId, exp });
    return token;
  }

  revoke(token: string): void {
    this.tokens.delete(token);
  }

  /** Makes every request fail (`{status}`), hang until the client gives up, or answer again. */
  setFault(fault: CrossbarFault): void {
    this.fault = fault;
  }

  hitsOf(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  /** Stops listening so requests are refused, as when Crossbar is down. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again on the same port after `stop()`. */
  async restart(): Promise<void> {
    this.server = createServer();
    await this.listen();
  }

  private async listen(): Promise<void> {
    this.server.on('request', (request, response) => this.handle(request, response));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    // A port already taken rejects here instead of crashing the process with an unhandled 'error'.
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0];
    this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
    if (this.fault === 'hang') return;
    if (this.fault) {
      return this.send(
        response,
        this.fault.status,
        errorEnvelope(this.fault.status, 'internal_error', undefined),
      );
    }
    const token = headerOf(request, 'x-auth-token');
    const record = token ? this.tokens.get(token) : undefined;
    const valid = record !== undefined && record.exp * 1000 > Date.now();
    if (request.method !== 'GET') {
      return this.send(response, 405, errorEnvelope(405, 'method_not_allowed', token));
    }
    if (!valid || token === undefined) {
      return this.send(response, 401, errorEnvelope(401, 'invalid_credentials', token));
    }
    if (path === '/v2/token_auth') {
      return this.send(
        response,
        200,
        successEnvelope(token, {
          account_id: record.accountId,
          owner_id: '8e248327b85591955749e53ea45b6baa',
          method: 'cb_user_auth',
          exp: record.exp,
          iss: 'kazoo',
          account_name: this.nameOf(record.accountId),
          apps: [],
          language: 'en-us',
          is_reseller: this.hasChildren(record.accountId),
          reseller_id: this.parents.get(record.accountId) ?? record.accountId,
        }),
      );
    }
    const account = /^\/v2\/accounts\/([^/]+)$/.exec(path)?.[1];
    if (account !== undefined) {
      const accountId = decodeURIComponent(account);
      if (!this.parents.has(accountId)) {
        return this.send(response, 404, errorEnvelope(404, 'bad_identifier', token));
      }
      if (
        !this.isSuperduper(record.accountId) &&
        !this.isAncestorOrSelf(record.accountId, accountId)
      ) {
        return this.send(response, 403, errorEnvelope(403, 'forbidden', token));
      }
      return this.send(
        response,
        200,
        successEnvelope(token, {
          id: accountId,
          name: this.nameOf(accountId),
          realm: this.realmOf(accountId),
          enabled: true,
          superduper_admin: this.isSuperduper(accountId),
          reseller_id: this.parents.get(accountId) ?? accountId,
        }),
      );
    }
    return this.send(response, 404, errorEnvelope(404, 'not_found', token));
  }

  private isSuperduper(accountId: string): boolean {
    return this.profiles.get(accountId)?.superduperAdmin === true;
  }

  private hasChildren(accountId: string): boolean {
    return [...this.parents.values()].includes(accountId);
  }

  private isAncestorOrSelf(ancestor: string, accountId: string | undefined): boolean {
    for (let current = accountId; current !== undefined; current = this.parents.get(current)) {
      if (current === ancestor) return true;
    }
    return false;
  }

  private send(response: ServerResponse, status: number, body: object): void {
    response.writeHead(status, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify(body));
  }
}

function headerOf(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function envelopeBase(token: string | undefined): Record<string, unknown> {
  return {
    auth_token: token ?? '',
    request_id: randomBytes(16).toString('hex'),
    node: 'Y3Jvc3NiYXJAa2F6b28',
    version: '4.3.142',
    timestamp: new Date().toISOString(),
  };
}

function successEnvelope(token: string, data: object): object {
  return {
    ...envelopeBase(token),
    revision: randomBytes(16).toString('hex'),
    status: 'success',
    data,
  };
}

/** Crossbar's error envelope (`api_util:create_resp_envelope/1`, `cb_context:add_system_error/2`). */
function errorEnvelope(status: number, message: string, token: string | undefined): object {
  const text = message.replace(/_/g, ' ');
  return {
    ...envelopeBase(token),
    status: 'error',
    message,
    error: String(status),
    data: { message: text },
  };
}
