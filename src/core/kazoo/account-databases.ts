/**
 * Kazoo's per-account databases as they appear in routing keys: the account database
 * `account%2F4b%2F8c%2F6fec4b2597882c0390202d195419` and the month databases (MODB)
 * `account%2F4b%2F8c%2F6fec4b2597882c0390202d195419-202611`. `/` is written `%2F` by Kazoo's
 * own naming, so these words are used as they are, never encoded again.
 */

const ACCOUNT_ID = /^[0-9a-f]{32}$/;

/** Kazoo account ids are 32 lower-case hex characters. */
export function isAccountId(value: unknown): value is string {
  return typeof value === 'string' && ACCOUNT_ID.test(value);
}

/** The encoded account database of `accountId` (32 hex characters). */
export function accountDb(accountId: string): string {
  return `account%2F${accountId.slice(0, 2)}%2F${accountId.slice(2, 4)}%2F${accountId.slice(4)}`;
}

/** The encoded MODB of `accountId` for the month of `date` (UTC). */
export function accountModb(accountId: string, date: Date): string {
  const month = String(date.getUTCMonth() + 1).padStart(2, '0');
  return `${accountDb(accountId)}-${date.getUTCFullYear()}${month}`;
}

/**
 * The MODBs a live subscription binds: last month's (documents still updated after the month
 * ended), this month's and next month's (publishers whose clock is ahead). Keys move on at each
 * month change, so none of them ever goes stale.
 */
export function modbWindow(accountId: string, now: Date): string[] {
  return [-1, 0, 1].map((offset) =>
    accountModb(accountId, new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1))),
  );
}

const ACCOUNT_DATABASE =
  /^account(?:%2F|\/)([0-9a-f]{2})(?:%2F|\/)([0-9a-f]{2})(?:%2F|\/)([0-9a-f]{28})(?:-\d{6})?$/i;

/**
 * The account a database belongs to, from its name (encoded or not, account db or MODB);
 * `undefined` for databases of no account.
 */
export function accountOfDatabase(database: string): string | undefined {
  const match = ACCOUNT_DATABASE.exec(database);
  return match ? `${match[1]}${match[2]}${match[3]}`.toLowerCase() : undefined;
}

/** True for a month database (`…-YYYYMM`). */
export function isModb(database: string): boolean {
  return /-\d{6}$/.test(database);
}
