import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

/** What a PEM file given to `TLS_*_FILE` must hold. */
export type PemKind = 'certificate' | 'private key';

const PEM_BLOCK: Record<PemKind, RegExp> = {
  certificate: /-----BEGIN CERTIFICATE-----/,
  // PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys; an encrypted key is refused below, as nothing
  // could supply its passphrase at boot.
  'private key': /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----/,
};

/** The files `TLS_CERT_FILE`, `TLS_KEY_FILE` and `TLS_CA_FILE` name, read. */
export interface TlsCredentials {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

/** The variables that name them, as `Environment` holds them. */
export interface TlsFileSettings {
  readonly TLS_CERT_FILE?: string;
  readonly TLS_KEY_FILE?: string;
  readonly TLS_CA_FILE?: string;
}

/** The scheme clients reach the port with: `https` (and wss) once both TLS files are set. */
export function httpScheme(settings: TlsFileSettings): 'http' | 'https' {
  return settings.TLS_CERT_FILE !== undefined && settings.TLS_KEY_FILE !== undefined
    ? 'https'
    : 'http';
}

/** Why `path` cannot serve as a PEM `kind`, or `undefined` when it can. */
export function pemFileProblem(path: string, kind: PemKind): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'read error';
    return `cannot read ${path} (${code})`;
  }
  if (kind === 'private key' && /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text)) {
    return `${path} holds an encrypted private key; give an unencrypted one`;
  }
  if (!PEM_BLOCK[kind].test(text)) return `${path} holds no PEM ${kind}`;
  return undefined;
}

/** Reads the TLS files, or `undefined` when TLS is off (neither file is set). */
export function readTlsCredentials(settings: TlsFileSettings): TlsCredentials | undefined {
  const { TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE } = settings;
  if (TLS_CERT_FILE === undefined || TLS_KEY_FILE === undefined) return undefined;
  return {
    cert: readFileSync(TLS_CERT_FILE),
    key: readFileSync(TLS_KEY_FILE),
    ...(TLS_CA_FILE !== undefined ? { ca: readFileSync(TLS_CA_FILE) } : {}),
  };
}

/**
 * Why the files, each a well-formed PEM, still cannot make a TLS context (a key that is not the
 * certificate's, a corrupt block), or `undefined`; OpenSSL's own words.
 */
export function tlsContextProblem(settings: TlsFileSettings): string | undefined {
  try {
    const credentials = readTlsCredentials(settings);
    if (credentials !== undefined) createSecureContext(credentials);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
