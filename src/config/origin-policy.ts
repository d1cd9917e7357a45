/**
 * Which web pages may talk to the gateway, from `CORS_ORIGINS`: `*` (any page), or a
 * comma-separated list of origins (`https://app.example.com`), either of which may add `null`
 * (pages with an opaque origin: `file://`, sandboxed frames). Blackhole authenticates by token,
 * never by cookie, so `*` means a wildcard without credentials. Credentials are allowed only to
 * origins listed by name: the socket.io 0.9 and 2.x browser clients send their cross-origin XHRs
 * `withCredentials`, and a browser refuses those any answer without them.
 */
export class OriginPolicy {
  private readonly anyOrigin: boolean;
  private readonly allowNull: boolean;
  private readonly origins: ReadonlySet<string>;

  constructor(setting: string) {
    const problem = OriginPolicy.problem(setting);
    if (problem !== undefined) throw new Error(`CORS_ORIGINS: ${problem}`);
    const entries = splitEntries(setting);
    this.anyOrigin = entries.includes('*');
    this.allowNull = entries.includes('null');
    this.origins = new Set(
      entries.filter((entry) => entry !== '*' && entry !== 'null').map((e) => new URL(e).origin),
    );
  }

  /** What is wrong with a `CORS_ORIGINS` value, or `undefined` when it is usable. */
  static problem(setting: string): string | undefined {
    const entries = splitEntries(setting);
    if (entries.some((entry) => entry === '')) return 'empty entry in the list';
    for (const entry of entries) {
      if (entry === '*' || entry === 'null') continue;
      let url: URL;
      try {
        url = new URL(entry);
      } catch {
        return `${entry} is not an origin (scheme://host[:port])`;
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        return `${entry} is not an http:// or https:// origin`;
      }
      if (url.host.includes('*')) return `${entry}: only a lone * stands for any origin`;
      if (url.username || url.password || url.search || url.hash || url.pathname !== '/') {
        return `${entry} is not an origin: scheme://host[:port] and nothing more`;
      }
    }
    return undefined;
  }

  /**
   * Whether a request or upgrade carrying this `Origin` may be served. Requests without one come
   * from programs, not browsers, and always may; so do the gateway's own pages (the console),
   * whose origin is the host they asked.
   */
  allows(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    if (origin === 'null') return this.allowNull;
    if (this.anyOrigin || this.origins.has(origin.toLowerCase())) return true;
    return host !== undefined && hostOf(origin) === host.toLowerCase();
  }

  /**
   * The `Access-Control-Allow-Origin` value for a request with this `Origin`, or `undefined` for
   * none. Same-origin pages need none; a reflected origin only ever comes from the list.
   */
  allowOrigin(origin: string | undefined): string | undefined {
    if (origin === 'null') return this.allowNull ? 'null' : undefined;
    if (this.anyOrigin) return '*';
    if (origin !== undefined && this.origins.has(origin.toLowerCase())) return origin;
    return undefined;
  }

  /**
   * Whether to answer `Access-Control-Allow-Credentials: true`: only to an origin listed by name,
   * never to one `*` or `null` lets in.
   */
  allowsCredentials(origin: string | undefined): boolean {
    return origin !== undefined && this.origins.has(origin.toLowerCase());
  }

  /** Whether answers depend on the request's `Origin`, so caches must key on it (`Vary`). */
  get reflects(): boolean {
    return !this.anyOrigin || this.allowNull;
  }
}

function splitEntries(setting: string): string[] {
  return setting.split(',').map((entry) => entry.trim());
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}
