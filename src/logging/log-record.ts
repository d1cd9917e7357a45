import { secretTag } from '../core/secret-tag';
import type { Session } from '../core/session';

/**
 * Fields a log line may carry besides its message. JSON logs write them as properties of the
 * line, text logs in words; either way a connection or a request can be followed through the
 * logs without searching messages.
 */
export interface LogFields {
  /**
   * The connection the line is about: its session id, or `secretTag` of it where the id is a
   * credential (socket.io 0.9).
   */
  readonly connection?: string;
  /** The id a Kazoo 4.x client gave the request (`request_id`) the line is about. */
  readonly request_id?: string;
}

/** A log message with fields, passed to Nest's `Logger` in place of a string. */
export interface LogRecord extends LogFields {
  readonly msg: string;
}

/** How logs name `session`: its `logName`, or a tag of its id when that may be a credential. */
export function connectionName(session: Pick<Session, 'id' | 'logName'>): string {
  return session.logName ?? secretTag(session.id);
}

/** A line about one connection; `connection` must never be a credential (see `LogFields`). */
export function connectionLog(
  connection: string,
  msg: string,
  fields: Omit<LogFields, 'connection'> = {},
): LogRecord {
  return { msg, connection, ...fields };
}

export function isLogRecord(message: unknown): message is LogRecord {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { msg?: unknown }).msg === 'string'
  );
}

/** A record in words, for text logs: `session <connection>: <msg> (request <id>)`. */
export function recordText({ msg, connection, request_id }: LogRecord): string {
  const subject = connection !== undefined ? `session ${connection}: ` : '';
  const request = request_id !== undefined ? ` (request ${printable(request_id)})` : '';
  return `${subject}${msg}${request}`;
}

/** A client-chosen id in a text line: control characters escaped, so it cannot forge lines. */
function printable(text: string): string {
  return /^[\w.:-]*$/.test(text) ? text : JSON.stringify(text);
}
