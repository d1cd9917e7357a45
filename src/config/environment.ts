import { plainToInstance, Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  ValidateBy,
  ValidateIf,
  validateSync,
  type ValidationArguments,
} from 'class-validator';
import { TrustedProxies } from './client-address';
import { OriginPolicy } from './origin-policy';
import { pemFileProblem, tlsContextProblem, type PemKind } from './tls-files';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** `CORS_ORIGINS`: `*` or a list of origins, as `OriginPolicy` reads it. */
function IsOriginList(): PropertyDecorator {
  return ValidateBy({
    name: 'isOriginList',
    validator: {
      validate: (value: unknown) =>
        typeof value === 'string' && OriginPolicy.problem(value) === undefined,
      defaultMessage: ({ value }: ValidationArguments) =>
        typeof value === 'string'
          ? `CORS_ORIGINS: ${OriginPolicy.problem(value)}`
          : 'CORS_ORIGINS must be * or a comma-separated list of origins',
    },
  });
}

/** `TLS_*_FILE`: a readable file holding a PEM `kind`. */
function IsPemFile(kind: PemKind): PropertyDecorator {
  return ValidateBy({
    name: 'isPemFile',
    validator: {
      validate: (value: unknown) =>
        typeof value === 'string' && pemFileProblem(value, kind) === undefined,
      defaultMessage: ({ value }: ValidationArguments) =>
        typeof value === 'string'
          ? (pemFileProblem(value, kind) ?? `must name a PEM ${kind} file`)
          : `must name a PEM ${kind} file`,
    },
  });
}

/** A variable that means nothing without `other` (the TLS files). */
function RequiresAlso(other: 'TLS_CERT_FILE' | 'TLS_KEY_FILE', hint: string): PropertyDecorator {
  return ValidateBy({
    name: 'requiresAlso',
    validator: {
      validate: (_value: unknown, { object }: ValidationArguments) =>
        (object as Environment)[other] !== undefined,
      defaultMessage: ({ property }: ValidationArguments) =>
        `${property} is set but ${other} is not; ${hint}`,
    },
  });
}

/** `TRUSTED_PROXIES`: IPs and CIDRs, as `TrustedProxies` reads them. */
function IsTrustedProxies(): PropertyDecorator {
  return ValidateBy({
    name: 'isTrustedProxies',
    validator: {
      validate: (value: unknown) =>
        typeof value === 'string' && TrustedProxies.problem(value) === undefined,
      defaultMessage: ({ value }: ValidationArguments) =>
        typeof value === 'string'
          ? `TRUSTED_PROXIES: ${TrustedProxies.problem(value)}`
          : 'TRUSTED_PROXIES must be a comma-separated list of IP addresses and CIDRs',
    },
  });
}

const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;

/**
 * Every environment variable Blackhole reads, with its default. The README's configuration
 * table mirrors this class; keep them in step.
 */
export class Environment {
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT: number = 5555;

  @IsString()
  @Matches(/^[0-9A-Za-z.:[\]-]+$/, { message: 'HOST must be a host name or an IP address' })
  HOST: string = '0.0.0.0';

  /**
   * Connections the kernel may hold for the node before it accepts them (the kernel caps it at
   * `net.core.somaxconn`). Node's 511 overflows when thousands of clients reconnect at once,
   * and an overflowing queue drops or resets their handshakes.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(65535)
  LISTEN_BACKLOG: number = 4096;

  @IsUrl(
    { protocols: ['amqp', 'amqps'], require_tld: false, require_protocol: true },
    { message: 'AMQP_URL must be an amqp:// or amqps:// URL' },
  )
  AMQP_URL: string = 'amqp://guest:guest@127.0.0.1:5672';

  /**
   * Longest delay between two attempts to reconnect to RabbitMQ or to set up a lost consumer
   * again; the first retry comes after 100 ms and the delay doubles up to this.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(300)
  AMQP_RECONNECT_S: number = 2;

  /**
   * Seconds between passive checks that the exchanges the node binds on still exist (an
   * exchange deleted on the broker takes the node's bindings with it); 0 turns them off.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3600)
  AMQP_EXCHANGE_CHECK_S: number = 10;

  /** How many unacknowledged deliveries RabbitMQ may push to one consumer at a time. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(65535)
  AMQP_PREFETCH: number = 200;

  /**
   * Largest message the node reads, checked on the raw body and again while a gzipped body is
   * inflated; larger ones are dropped unparsed. Kazoo's events are a few KB.
   */
  @Transform(toInt)
  @IsInt()
  @Min(64 * 1024)
  @Max(64 * 1024 * 1024)
  AMQP_MAX_MESSAGE_BYTES: number = 1024 * 1024;

  /**
   * How long `GET /v2/accounts/{id}/websockets` collects the fleet's answers to its
   * `websockets.get` request: nodes are not known in advance, so every listing takes this long.
   */
  @Transform(toInt)
  @IsInt()
  @Min(50)
  @Max(30_000)
  FLEET_LISTING_TIMEOUT_MS: number = 1000;

  @IsUrl(
    { protocols: ['http', 'https'], require_tld: false, require_protocol: true },
    { message: 'CROSSBAR_URL must be an http:// or https:// URL' },
  )
  CROSSBAR_URL: string = 'http://127.0.0.1:8000/v2';

  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(60000)
  CROSSBAR_TIMEOUT_MS: number = 5000;

  /**
   * Crossbar requests the node may have in flight at once, across all connections; more wait
   * in `CROSSBAR_MAX_QUEUED`, so a flood of unknown tokens cannot swamp Crossbar.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10_000)
  CROSSBAR_MAX_CONCURRENT: number = 32;

  /**
   * Crossbar requests that may wait for a free slot; one arriving with the queue full is refused
   * with `rate_limited` at once. Waiting counts towards `CROSSBAR_TIMEOUT_MS`.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  CROSSBAR_MAX_QUEUED: number = 256;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(86400)
  AUTH_CACHE_TTL_S: number = 60;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3600)
  AUTH_NEGATIVE_TTL_S: number = 5;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  AUTH_CACHE_MAX: number = 10000;

  /**
   * Seconds between re-checks, with Crossbar, of every live subscription's token and account:
   * a revoked token or a lost account stops streaming within this interval.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86400)
  AUTH_REVALIDATE_S: number = 60;

  /**
   * How long live subscriptions keep streaming while Crossbar cannot answer their re-checks
   * (5xx, timeouts, unreachable), counted from the last successful check; then they are dropped.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(86400)
  AUTH_OUTAGE_GRACE_S: number = 300;

  /** Largest frame a client may send, on every protocol; larger ones close the connection. */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(16 * 1024 * 1024)
  MAX_FRAME_BYTES: number = 64 * 1024;

  /** Crossbar lookups (tokens or accounts not in the cache) one connection may make in a burst. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  CROSSBAR_LOOKUPS_BURST: number = 20;

  /** Crossbar lookups per minute one connection regains. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  CROSSBAR_LOOKUPS_PER_MIN: number = 60;

  /**
   * Crossbar lookups all connections from one client address may make in a burst, besides each
   * connection's own budget: many connections cannot each spend a full one.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  CROSSBAR_IP_LOOKUPS_BURST: number = 100;

  /** Crossbar lookups per minute one client address regains. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  CROSSBAR_IP_LOOKUPS_PER_MIN: number = 300;

  /** Most bindings one connection may hold; each costs the node on every event of its account. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  MAX_BINDINGS_PER_CONNECTION: number = 1000;

  /**
   * Most distinct broker keys (exchange and routing key) the subscriptions of one account may
   * hold on this node, across its connections: each one is a binding on RabbitMQ.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  MAX_BROKER_KEYS_PER_ACCOUNT: number = 1000;

  /**
   * Unsent bytes a connection may have waiting, on every protocol; past it the client is not
   * reading and is dropped as a slow consumer, so memory stays bounded whatever a client does.
   */
  @Transform(toInt)
  @IsInt()
  @Min(16 * 1024)
  @Max(1024 * 1024 * 1024)
  MAX_OUTBOUND_BYTES: number = 1024 * 1024;

  /**
   * Seconds of events kept in the shared replay log (a RabbitMQ stream) for clients that resume
   * after a reconnect; 0 turns resume off and live delivery reads the per-node queues as before.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(86400)
  REPLAY_WINDOW_S: number = 120;

  /** Bytes the replay log may hold on the broker, whatever its age (`x-max-length-bytes`). */
  @Transform(toInt)
  @IsInt()
  @Min(1024 * 1024)
  @Max(1024 * 1024 * 1024 * 1024)
  REPLAY_MAX_BYTES: number = 1024 * 1024 * 1024;

  /** Name of the replay log stream; every node of a fleet must use the same. */
  @IsString()
  @Matches(/^[A-Za-z0-9_.:-]{1,200}$/)
  REPLAY_STREAM: string = 'blackhole.replay';

  /** Reads of the replay log one node runs at once; each serves every resume it can. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  REPLAY_CONCURRENCY: number = 4;

  /** Resumes that may wait for a read of the replay log; past it a resume gets `replay_busy`. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  REPLAY_MAX_WAITING: number = 10000;

  /**
   * Newest replay log entries each node keeps in memory, as live delivery read them: a resume
   * after a short gap reads them there rather than from the broker. 0 reads every replay from
   * the stream.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  REPLAY_MEMORY_ENTRIES: number = 50000;

  /**
   * Bytes of JSON (inflated) the entries a node keeps in memory were parsed from, at most: with
   * large events this binds before `REPLAY_MEMORY_ENTRIES` does, so memory stays bounded
   * whatever Kazoo publishes. Parsed, they take about 1.1× that in heap.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(16 * 1024 * 1024 * 1024)
  REPLAY_MEMORY_BYTES: number = 128 * 1024 * 1024;

  /** Unacknowledged log entries one replay may have in flight (its read rate's cap). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10000)
  REPLAY_PREFETCH: number = 500;

  /**
   * Subscribe/unsubscribe requests (any frame on plain WebSocket) one connection may burst, on
   * every protocol (Kazoo 4.x `max_bucket_tokens`). `WS_RATE_BURST` is read when this is unset.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  REQUEST_RATE_BURST: number = 100;

  /**
   * Requests per second a connection regains, on every protocol (Kazoo 4.x `tokens_fill_rate`).
   * `WS_RATE_PER_S` is read when this is unset.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  REQUEST_RATE_PER_S: number = 10;

  /** Open connections the node accepts, all protocols together; past it new ones get 503. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  MAX_CONNECTIONS: number = 50000;

  /** Open connections from one client address; past it new ones get 429. High for NAT'd offices. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  MAX_CONNECTIONS_PER_IP: number = 1000;

  /**
   * Proxies whose `X-Forwarded-For` names the client (comma-separated IPs and CIDRs, IPv4 or
   * IPv6). Empty: the peer's address is the client's, and the header is ignored.
   */
  @IsTrustedProxies()
  TRUSTED_PROXIES: string = '';

  /** Seconds a connection has to subscribe successfully once; then it is closed. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86400)
  AUTH_DEADLINE_S: number = 30;

  /** Seconds between server pings on WebSocket connections (Kazoo 4.x and socket.io 0.9); a peer that misses one is disconnected. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(3600)
  WS_PING_INTERVAL_S: number = 30;

  /** socket.io 0.9: seconds between server heartbeats (Kazoo 3.x: 5). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(3600)
  LEGACY_HEARTBEAT_S: number = 5;

  /** socket.io 0.9 over xhr-polling: seconds of silence after which a session is closed (Kazoo 3.x: 30). */
  @Transform(toInt)
  @IsInt()
  @Min(2)
  @Max(3600)
  LEGACY_TIMEOUT_S: number = 30;

  /** socket.io 0.9: seconds a handshaken session may wait for its first transport (Kazoo 3.x: 30). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(3600)
  LEGACY_CLOSE_TIMEOUT_S: number = 30;

  /** socket.io 0.9: longest a long-poll is held open before it is answered with a noop. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(300)
  LEGACY_POLL_S: number = 20;

  /**
   * Seconds between checks, with Crossbar, of the realm of every account subscribed to presence:
   * a realm moved to another account stops reaching the old one within this (plus
   * `AUTH_CACHE_TTL_S`, which caches Crossbar's account documents).
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86400)
  PRESENCE_REALM_CHECK_S: number = 300;

  /**
   * Origins whose pages may connect: `*` (Kazoo's Blackhole took browsers from anywhere; tokens,
   * not cookies, authenticate) or a comma-separated list; `null` only when listed.
   */
  @IsOriginList()
  CORS_ORIGINS: string = '*';

  /**
   * When set, `GET /metrics` answers only requests with `Authorization: Bearer <token>`; unset,
   * it is open (keep it on a private network then).
   */
  @ValidateIf((env: Environment) => env.METRICS_TOKEN !== '')
  @IsString()
  @Matches(/^[\x21-\x7e]{16,}$/, {
    message: 'METRICS_TOKEN must be at least 16 printable ASCII characters without spaces',
  })
  METRICS_TOKEN: string = '';

  /**
   * PEM certificate (its chain may follow it in the same file). With `TLS_KEY_FILE`, the port
   * serves https and wss only, for every protocol; without both, plain http and ws.
   */
  @IsOptional()
  @RequiresAlso('TLS_KEY_FILE', 'set both or neither')
  @IsPemFile('certificate')
  TLS_CERT_FILE: string | undefined = undefined;

  /** PEM private key of `TLS_CERT_FILE`, unencrypted. */
  @IsOptional()
  @RequiresAlso('TLS_CERT_FILE', 'set both or neither')
  @IsPemFile('private key')
  TLS_KEY_FILE: string | undefined = undefined;

  /** PEM intermediate certificates sent after `TLS_CERT_FILE`'s, for a chain kept apart. */
  @IsOptional()
  @RequiresAlso('TLS_CERT_FILE', 'it only completes the chain of TLS_CERT_FILE')
  @IsPemFile('certificate')
  TLS_CA_FILE: string | undefined = undefined;

  /**
   * Seconds a stop (SIGTERM, SIGINT) may take: clients are told and given a moment, consumers
   * cancelled; the process exits 0 by then even if some client never hangs up.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(600)
  SHUTDOWN_GRACE_S: number = 10;

  @IsIn(LOG_LEVELS)
  LOG_LEVEL: LogLevelName = 'info';

  @IsIn(['text', 'json'])
  LOG_FORMAT: 'text' | 'json' = 'text';
}

/**
 * Former names still read when the new one is unset: the request rate limit was the plain
 * WebSocket's alone and now applies to every protocol.
 */
const DEPRECATED_NAMES: Readonly<Record<string, string>> = {
  REQUEST_RATE_BURST: 'WS_RATE_BURST',
  REQUEST_RATE_PER_S: 'WS_RATE_PER_S',
};

export type EnvironmentSource = Readonly<Record<string, string | undefined>>;

/** Raised at boot when one or more variables are invalid; its message names each of them. */
export class InvalidEnvironmentError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid environment variables:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'InvalidEnvironmentError';
  }
}

/** Keeps passwords in URLs such as AMQP_URL out of boot errors and logs. */
export function redactCredentials(value: string | undefined): string | undefined {
  // Up to the last '@': passwords may themselves contain '@' or '/'.
  return value?.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/i, '$1***@');
}

/** Variables whose values never appear in a boot error. */
const SECRET_VARIABLES: ReadonlySet<string> = new Set(['METRICS_TOKEN']);

/**
 * Reads the variables Blackhole knows from `source`, applies defaults and validates them all at
 * once, so an operator fixes every mistake in one go instead of one boot at a time.
 */
export function loadEnvironment(source: EnvironmentSource = process.env): Environment {
  const known = Object.keys(new Environment());
  const present: Record<string, string> = {};
  for (const key of known) {
    const formerName = DEPRECATED_NAMES[key];
    const value = source[key] || (formerName === undefined ? undefined : source[formerName]);
    if (value !== undefined && value !== '') present[key] = value;
  }
  const env = plainToInstance(Environment, present);
  const errors = validateSync(env, { forbidUnknownValues: true });
  const problems = errors.map((error) => {
    const reasons = Object.values(error.constraints ?? {}).join('; ');
    const shown = SECRET_VARIABLES.has(error.property)
      ? '***'
      : redactCredentials(present[error.property]);
    return `${error.property}=${JSON.stringify(shown)}: ${reasons}`;
  });
  // Each file may be a fine PEM and the pair still unusable (a key of another certificate).
  if (!errors.some((error) => error.property.startsWith('TLS_'))) {
    const tlsProblem = tlsContextProblem(env);
    if (tlsProblem !== undefined) {
      const files =
        env.TLS_CA_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_CERT_FILE and TLS_CA_FILE';
      problems.push(
        `TLS_KEY_FILE=${JSON.stringify(env.TLS_KEY_FILE)}: makes no TLS context with ${files} (${tlsProblem})`,
      );
    }
  }
  if (problems.length > 0) throw new InvalidEnvironmentError(problems);
  return env;
}
