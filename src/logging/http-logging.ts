import type { IncomingMessage, ServerResponse } from 'node:http';
import { storage, Store } from 'nestjs-pino/storage';
import type { Logger as PinoRoot } from 'pino';
import { pinoHttp, type Options as HttpLogOptions } from 'pino-http';
import { acceptRequestId } from './request-id';

/** Query parameters whose values are credentials: a console page opened with `?auth_token=`. */
const SECRET_PARAMETER = /token|auth|key|secret|password|sid/i;
/** socket.io 0.9 carries its session id, a credential, in the path: `/socket.io/1/<transport>/<sid>`. */
const LEGACY_SESSION_PATH = /^(\/socket\.io\/1\/[^/?]+\/)[^/?]+/;
const REDACTED = '[redacted]';

/** `url` fit for a log: credentials in its query or its path replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  const queryAt = url.indexOf('?');
  const path = (queryAt === -1 ? url : url.slice(0, queryAt)).replace(
    LEGACY_SESSION_PATH,
    `$1${REDACTED}`,
  );
  if (queryAt === -1) return path;
  const query = url
    .slice(queryAt + 1)
    .split('&')
    .map((pair) => {
      const equalsAt = pair.indexOf('=');
      const name = equalsAt === -1 ? pair : pair.slice(0, equalsAt);
      return equalsAt !== -1 && SECRET_PARAMETER.test(safeDecode(name))
        ? `${name}=${REDACTED}`
        : pair;
    })
    .join('&');
  return `${path}?${query}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** What an access log line says of a request: never its headers (`X-Auth-Token`, `Authorization`). */
interface LoggedRequest {
  readonly method?: string;
  readonly url?: string;
}

/**
 * pino-http's settings: one access line per request at `debug` (health checks every few
 * seconds would flood `info`), `warn` for a 5xx; every line made while handling a request
 * carries its `request_id`.
 */
export function httpLogOptions(root: PinoRoot): HttpLogOptions {
  return {
    logger: root,
    // Only asked when `requestIds`, which runs first, has not set `request.id`.
    genReqId: (request) => acceptRequestId(request.headers['x-request-id']),
    customAttributeKeys: { reqId: 'request_id' },
    // Lines logged by the application during a request get the id, not the whole request.
    quietReqLogger: true,
    customLogLevel: (_request, response, error) =>
      error !== undefined || response.statusCode >= 500 ? 'warn' : 'debug',
    serializers: {
      req: (request: LoggedRequest): LoggedRequest => ({
        method: request.method,
        url: request.url === undefined ? undefined : redactUrl(request.url),
      }),
      res: (response: { statusCode?: number }) => ({ statusCode: response.statusCode }),
    },
    // The serializers above already leave headers out; this holds should one ever let them in.
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["x-auth-token"]',
        'req.headers.cookie',
        'req.query.auth_token',
      ],
      remove: true,
    },
  };
}

type Middleware = (request: IncomingMessage, response: ServerResponse, next: () => void) => void;

/**
 * Express middleware for JSON logs: pino-http's access line, then the request's logger bound
 * for the rest of the request, where nestjs-pino's `PinoLogger` looks for it. That binding is
 * what nestjs-pino's `LoggerModule` installs; done here so it runs before the static pages and
 * without a Nest route pattern.
 */
export function httpLogging(root: PinoRoot): Middleware[] {
  const accessLog = pinoHttp(httpLogOptions(root));
  const bindRequestLogger: Middleware = (request, _response, next) => {
    const { log } = request as IncomingMessage & { log: PinoRoot };
    storage.run(new Store(log), next);
  };
  return [accessLog, bindRequestLogger];
}
