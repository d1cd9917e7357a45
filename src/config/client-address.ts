import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** `::ffff:192.0.2.1` and `192.0.2.1` are the same IPv4 client; limits must count them once. */
export function normalizeAddress(address: string): string {
  const trimmed = address.trim();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(trimmed);
  return mapped ? mapped[1] : trimmed.toLowerCase();
}

/**
 * The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`): IPv4 and IPv6 addresses
 * and CIDR ranges. Anyone else could write any address there and so escape per-IP limits.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(spec: string) {
    const entries = TrustedProxies.entries(spec);
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [address, prefix] = entry.split('/');
      const normalized = normalizeAddress(address);
      const family = isIP(normalized) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.list.addAddress(normalized, family);
      else this.list.addSubnet(normalized, Number(prefix), family);
    }
  }

  /** Why `spec` is not a valid `TRUSTED_PROXIES`, or `undefined` when it is. */
  static problem(spec: string): string | undefined {
    for (const entry of TrustedProxies.entries(spec)) {
      const [address, prefix, extra] = entry.split('/');
      const family = isIP(normalizeAddress(address));
      if (family === 0 || extra !== undefined) return `"${entry}" is not an IP address or CIDR`;
      if (prefix === undefined) continue;
      const max = family === 4 ? 32 : 128;
      if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
        return `"${entry}" has a prefix length outside 0-${max}`;
      }
    }
    return undefined;
  }

  private static entries(spec: string): string[] {
    return spec
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
  }

  trusts(address: string): boolean {
    if (this.empty) return false;
    const family = isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/**
 * The address a client connects from: the peer's, or, when the peer is a trusted proxy, the
 * right-most address of `X-Forwarded-For` that is not itself a trusted proxy. Addresses left of
 * it were written by the client or by proxies we do not know, and are never believed.
 */
export function clientAddress(request: IncomingMessage, proxies: TrustedProxies): string {
  let address = normalizeAddress(request.socket.remoteAddress ?? '');
  if (!proxies.trusts(address)) return address;
  const header = request.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map(normalizeAddress)
    .filter((hop) => hop !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    // A malformed hop ends the walk: what is left of it cannot be attributed to anyone.
    if (isIP(hops[i]) === 0) return address;
    address = hops[i];
    if (!proxies.trusts(address)) return address;
  }
  return address;
}
