import { request as httpRequestRaw } from 'node:http';
import { request as httpsRequestRaw } from 'node:https';

export interface HttpRequestOptions {
  readonly method?: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  /** Certificates to trust for an https URL (the test's self-signed one). */
  readonly ca?: string;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/**
 * One request over http or https. Node's `fetch` cannot be told which CA to trust without
 * undici's `Agent`, which is not a dependency; this can, so tests keep verifying the certificate.
 */
export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpAnswer> {
  const { method = 'GET', body, headers = {}, ca } = options;
  const send = url.startsWith('https:') ? httpsRequestRaw : httpRequestRaw;
  return new Promise((resolve, reject) => {
    const outgoing = send(url, { method, headers, ...(ca !== undefined ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
