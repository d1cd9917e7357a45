import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadEnvironment } from '../config/environment';
import { AuthUnavailableError, RateLimitedError } from '../core/errors';
import { FakeCrossbar } from '../../test/support/fake-crossbar';
import { waitUntil } from '../../test/support/wait';
import { CrossbarClient } from './crossbar.client';

async function outcomeOf<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

/**
 * A Crossbar that answers `token_auth` only when the test says so, so a test controls how many
 * requests are open at once and sees the order they arrive in. The account id is the token.
 */
class HeldCrossbar {
  readonly arrivals: string[] = [];
  private readonly held: { token: string; response: ServerResponse }[] = [];
  private open = 0;
  maxOpen = 0;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<HeldCrossbar> {
    const server = createServer();
    const crossbar = new HeldCrossbar(server);
    server.on('request', (request, response) => {
      const token = String(request.headers['x-auth-token']);
      crossbar.arrivals.push(token);
      crossbar.open++;
      crossbar.maxOpen = Math.max(crossbar.maxOpen, crossbar.open);
      crossbar.held.push({ token, response });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return crossbar;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v2`;
  }

  /** Answers the oldest held request. */
  answerOne(): void {
    const next = this.held.shift();
    if (!next) throw new Error('no request is held');
    this.open--;
    next.response.writeHead(200, { 'Content-Type': 'application/json' });
    next.response.end(JSON.stringify({ status: 'success', data: { account_id: next.token } }));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('CrossbarClient concurrency cap', () => {
  function client(url: string, overrides: Record<string, string>): CrossbarClient {
    return new CrossbarClient(loadEnvironment({ CROSSBAR_URL: url, ...overrides }));
  }

  describe('against a Crossbar that hangs', () => {
    let crossbar: FakeCrossbar;

    beforeEach(async () => {
      crossbar = await FakeCrossbar.start();
      crossbar.setFault('hang');
    });

    afterEach(async () => {
      crossbar.setFault(undefined);
      await crossbar.stop();
    });

    it('lets CROSSBAR_MAX_CONCURRENT requests reach it, queues CROSSBAR_MAX_QUEUED, refuses the rest without a request', async () => {
      const crossbarClient = client(crossbar.url, {
        CROSSBAR_MAX_CONCURRENT: '3',
        CROSSBAR_MAX_QUEUED: '2',
        CROSSBAR_TIMEOUT_MS: '1000',
      });
      const started = Date.now();
      const calls = Array.from({ length: 10 }, (_, i) =>
        outcomeOf(crossbarClient.tokenInfo(`unknown-token-${i}`)),
      );
      const refusedAt: number[] = [];
      const outcomes = calls.map((call) =>
        call.then((outcome) => {
          if (outcome.error instanceof RateLimitedError) refusedAt.push(Date.now() - started);
          return outcome;
        }),
      );
      await waitUntil('3 requests at the stand-in', () =>
        crossbar.hitsOf('/v2/token_auth') === 3 ? true : undefined,
      );
      await waitUntil('5 refusals', () => (refusedAt.length === 5 ? true : undefined));
      expect(crossbarClient.load).toEqual({ inFlight: 3, queued: 2, refusedBusy: 5 });
      // Refused at once, long before anything could time out.
      expect(Math.max(...refusedAt)).toBeLessThan(500);

      const settled = await Promise.all(outcomes);
      const elapsed = Date.now() - started;
      const refused = settled.filter((o) => o.error instanceof RateLimitedError);
      expect(refused).toHaveLength(5);
      expect(refused[0].error).toMatchObject({
        code: 'rate_limited',
        temporary: true,
        message: 'authentication service busy; retry later',
      });
      // The queued requests' wait counts towards the timeout: everyone is answered within it.
      expect(settled.filter((o) => o.error instanceof AuthUnavailableError)).toHaveLength(5);
      expect(elapsed).toBeLessThan(1900);
      expect(crossbar.hitsOf('/v2/token_auth')).toBeLessThanOrEqual(5);
      expect(crossbarClient.load).toEqual({ inFlight: 0, queued: 0, refusedBusy: 5 });
    });
  });

  describe('against a Crossbar that answers when told', () => {
    let crossbar: HeldCrossbar;

    beforeEach(async () => {
      crossbar = await HeldCrossbar.start();
    });

    afterEach(async () => {
      await crossbar.stop();
    });

    it('sends queued requests in arrival order as slots free, never more than the cap at once', async () => {
      const crossbarClient = client(crossbar.url, {
        CROSSBAR_MAX_CONCURRENT: '2',
        CROSSBAR_MAX_QUEUED: '10',
        CROSSBAR_TIMEOUT_MS: '10000',
      });
      const tokens = ['t0', 't1', 't2', 't3', 't4', 't5'];
      const answers = tokens.map((token) => crossbarClient.tokenInfo(token));
      await waitUntil('two requests open', () =>
        crossbar.arrivals.length === 2 ? true : undefined,
      );
      expect(crossbarClient.load).toEqual({ inFlight: 2, queued: 4, refusedBusy: 0 });
      for (let answered = 1; answered <= tokens.length; answered++) {
        crossbar.answerOne();
        const expected = Math.min(tokens.length, answered + 2);
        await waitUntil(`${expected} arrivals`, () =>
          crossbar.arrivals.length === expected ? true : undefined,
        );
      }
      await expect(Promise.all(answers)).resolves.toEqual(
        tokens.map((token) => ({ accountId: token, exp: undefined })),
      );
      expect(crossbar.arrivals).toEqual(tokens);
      expect(crossbar.maxOpen).toBe(2);
      expect(crossbarClient.load).toEqual({ inFlight: 0, queued: 0, refusedBusy: 0 });
    });
  });
});
