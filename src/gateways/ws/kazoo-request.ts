import { randomBytes } from 'node:crypto';
import { BadRequestError, GatewayError, ErrorCode } from '../../core/errors';

/** The actions of Kazoo 4.x's WebSocket protocol. */
export type KazooAction = 'subscribe' | 'unsubscribe' | 'ping' | 'resume';
/** `resume` is Blackhole's extension: `subscribe` plus the last position the client saw. */
const ACTIONS: readonly string[] = ['subscribe', 'unsubscribe', 'ping', 'resume'];

/** One client frame, checked for shape (not yet for meaning). */
export interface KazooRequest {
  readonly action: KazooAction;
  readonly requestId: string;
  readonly authToken?: string;
  /** `data`, when the frame has one. */
  readonly data?: {
    readonly accountId?: string;
    /** `binding`, or the `bindings` list. */
    readonly bindings?: readonly string[];
    /** `resume`: the last position the client saw (checked by `ReplayService`). */
    readonly position?: unknown;
  };
  readonly name?: unknown;
  readonly metadata?: unknown;
}

/** A frame that could not be read, with the request id to answer it under. */
export class FrameError extends Error {
  constructor(
    readonly requestId: string,
    readonly error: GatewayError,
  ) {
    super(error.message);
    this.name = 'FrameError';
  }
}

/** Kazoo's default request id: 32 random hex characters. */
export function newRequestId(): string {
  return randomBytes(16).toString('hex');
}

const MAX_BINDINGS = 100;

/**
 * Reads one text frame of the Kazoo 4.x protocol (spec §3.2): a JSON object with `action`,
 * `request_id`, `auth_token`, `data.account_id`, `data.binding` or `data.bindings`, and `name`
 * and `metadata` at the top level or inside `data`. Anything else is refused with a message
 * that says what is wrong, never silently ignored.
 */
export function parseKazooRequest(text: string): KazooRequest {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    throw new FrameError(newRequestId(), new BadRequestError('invalid JSON'));
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    throw new FrameError(newRequestId(), new BadRequestError('expected a JSON object'));
  }
  const fields = frame as Record<string, unknown>;
  const requestId = readRequestId(fields.request_id);
  const fail = (error: GatewayError): FrameError => new FrameError(requestId, error);

  const action = fields.action;
  if (action === undefined) throw fail(new BadRequestError('missing required key : action'));
  if (typeof action !== 'string' || !ACTIONS.includes(action)) {
    throw fail(new BadRequestError(`unsupported action ${JSON.stringify(action).slice(0, 64)}`));
  }

  const token = fields.auth_token;
  if (token !== undefined && (typeof token !== 'string' || token === '')) {
    throw fail(new GatewayError(ErrorCode.TokenInvalid, 'invalid authentication token format'));
  }

  const data = fields.data;
  if (data !== undefined && (typeof data !== 'object' || data === null || Array.isArray(data))) {
    throw fail(new BadRequestError('data must be a JSON object'));
  }
  const body = data as Record<string, unknown> | undefined;
  return {
    action: action as KazooAction,
    requestId,
    authToken: token,
    data: body && {
      accountId: readString(body, 'account_id', fail),
      bindings: readBindings(body, fail),
      position: body.position,
    },
    // Kazoo read these at the top level while documenting them inside `data`: both work.
    name: fields.name ?? body?.name,
    metadata: fields.metadata ?? body?.metadata,
  };
}

function readRequestId(value: unknown): string {
  if (typeof value === 'string' && value !== '' && value.length <= 128) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return newRequestId();
}

function readString(
  body: Record<string, unknown>,
  key: string,
  fail: (error: GatewayError) => FrameError,
): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw fail(new BadRequestError(`${key} must be a string`));
  return value;
}

function readBindings(
  body: Record<string, unknown>,
  fail: (error: GatewayError) => FrameError,
): string[] | undefined {
  const binding = readString(body, 'binding', fail);
  const list = body.bindings;
  if (list === undefined) return binding === undefined ? undefined : [binding];
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.length > MAX_BINDINGS ||
    !list.every((item) => typeof item === 'string' && item !== '')
  ) {
    throw fail(
      new BadRequestError(`bindings must be a list of 1 to ${MAX_BINDINGS} non-empty strings`),
    );
  }
  return binding === undefined ? (list as string[]) : [binding, ...(list as string[])];
}
