import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  /** The certificate's PEM: a client trusts it as its own CA. */
  readonly cert: string;
}

/**
 * Throwaway certificates, made with openssl in a directory of their own, valid for 127.0.0.1
 * (where the tests connect) and localhost.
 */
export class TestCertificates {
  private constructor(readonly dir: string) {}

  static create(): TestCertificates {
    return new TestCertificates(mkdtempSync(join(tmpdir(), 'blackhole-tls-')));
  }

  /** A self-signed certificate and its unencrypted key, as `<name>.cert.pem` and `<name>.key.pem`. */
  selfSigned(name = 'gateway'): SelfSignedCertificate {
    const certFile = join(this.dir, `${name}.cert.pem`);
    const keyFile = join(this.dir, `${name}.key.pem`);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-sha256',
        '-days',
        '1',
        '-subj',
        `/CN=${name}`,
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: 'ignore' },
    );
    return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
