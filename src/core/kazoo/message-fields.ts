import type { KazooMessage } from '../families/event-family';

/** The value of `key` when it is a non-empty string; Kazoo leaves absent headers out or empty. */
export function textField(message: KazooMessage, key: string): string | undefined {
  const value = message[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** `Custom-Channel-Vars.Account-ID`: the tenant Kazoo stamps on a call's channel. */
export function channelVarsAccountId(message: KazooMessage): string | undefined {
  const vars = message['Custom-Channel-Vars'];
  return typeof vars === 'object' && vars !== null && !Array.isArray(vars)
    ? textField(vars as KazooMessage, 'Account-ID')
    : undefined;
}
