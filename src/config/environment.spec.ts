import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCertificates, type SelfSignedCertificate } from '../../test/support/tls';
import { Environment, InvalidEnvironmentError, loadEnvironment } from './environment';
import { httpScheme, readTlsCredentials } from './tls-files';

const DEFAULTS = {
  PORT: 5555,
  HOST: '0.0.0.0',
  LISTEN_BACKLOG: 4096,
  AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
  AMQP_RECONNECT_S: 2,
  AMQP_EXCHANGE_CHECK_S: 10,
  AMQP_PREFETCH: 200,
  FLEET_LISTING_TIMEOUT_MS: 1000,
  AMQP_MAX_MESSAGE_BYTES: 1048576,
  CROSSBAR_URL: 'http://127.0.0.1:8000/v2',
  CROSSBAR_TIMEOUT_MS: 5000,
  CROSSBAR_MAX_CONCURRENT: 32,
  CROSSBAR_MAX_QUEUED: 256,
  AUTH_CACHE_TTL_S: 60,
  AUTH_NEGATIVE_TTL_S: 5,
  AUTH_CACHE_MAX: 10000,
  AUTH_REVALIDATE_S: 60,
  AUTH_OUTAGE_GRACE_S: 300,
  MAX_FRAME_BYTES: 65536,
  CROSSBAR_LOOKUPS_BURST: 20,
  CROSSBAR_LOOKUPS_PER_MIN: 60,
  CROSSBAR_IP_LOOKUPS_BURST: 100,
  CROSSBAR_IP_LOOKUPS_PER_MIN: 300,
  MAX_BINDINGS_PER_CONNECTION: 1000,
  MAX_BROKER_KEYS_PER_ACCOUNT: 1000,
  MAX_OUTBOUND_BYTES: 1048576,
  REPLAY_WINDOW_S: 120,
  REPLAY_MAX_BYTES: 1073741824,
  REPLAY_STREAM: 'blackhole.replay',
  REPLAY_CONCURRENCY: 4,
  REPLAY_MAX_WAITING: 10000,
  REPLAY_MEMORY_ENTRIES: 50000,
  REPLAY_MEMORY_BYTES: 134217728,
  REPLAY_PREFETCH: 500,
  REQUEST_RATE_BURST: 100,
  REQUEST_RATE_PER_S: 10,
  MAX_CONNECTIONS: 50000,
  MAX_CONNECTIONS_PER_IP: 1000,
  TRUSTED_PROXIES: '',
  AUTH_DEADLINE_S: 30,
  WS_PING_INTERVAL_S: 30,
  LEGACY_HEARTBEAT_S: 5,
  LEGACY_TIMEOUT_S: 30,
  LEGACY_CLOSE_TIMEOUT_S: 30,
  LEGACY_POLL_S: 20,
  PRESENCE_REALM_CHECK_S: 300,
  CORS_ORIGINS: '*',
  METRICS_TOKEN: '',
  SHUTDOWN_GRACE_S: 10,
  LOG_LEVEL: 'info',
  LOG_FORMAT: 'text',
  TLS_CERT_FILE: undefined,
  TLS_KEY_FILE: undefined,
  TLS_CA_FILE: undefined,
};

function failureOf(source: Record<string, string>): InvalidEnvironmentError {
  try {
    loadEnvironment(source);
  } catch (error) {
    if (error instanceof InvalidEnvironmentError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(source)} to be rejected`);
}

describe('loadEnvironment', () => {
  it('applies every default when nothing is set', () => {
    const env = loadEnvironment({});
    expect(env).toBeInstanceOf(Environment);
    expect({ ...env }).toEqual(DEFAULTS);
  });

  it('treats empty values as unset', () => {
    const env = loadEnvironment({ PORT: '', HOST: '', AMQP_URL: '', LOG_LEVEL: '' });
    expect({ ...env }).toEqual(DEFAULTS);
  });

  it('takes valid values over the defaults', () => {
    const env = loadEnvironment({
      HOST: '::1',
      AMQP_URL: 'amqps://user:pw@rabbit.example.com:5671/vhost',
      CROSSBAR_URL: 'https://crossbar.example.com:8443/v2',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
    });
    expect(env.HOST).toBe('::1');
    expect(env.AMQP_URL).toBe('amqps://user:pw@rabbit.example.com:5671/vhost');
    expect(env.CROSSBAR_URL).toBe('https://crossbar.example.com:8443/v2');
    expect(env.LOG_LEVEL).toBe('debug');
    expect(env.LOG_FORMAT).toBe('json');
  });

  describe('integers', () => {
    const valid: ReadonlyArray<readonly [string, string, number]> = [
      ['PORT', '8080', 8080],
      ['PORT', '0', 0],
      ['PORT', '65535', 65535],
      ['PORT', ' 42 ', 42],
      ['AMQP_RECONNECT_S', '1', 1],
      ['AMQP_PREFETCH', '1000', 1000],
      ['FLEET_LISTING_TIMEOUT_MS', '250', 250],
      ['AMQP_EXCHANGE_CHECK_S', '0', 0],
      ['AMQP_EXCHANGE_CHECK_S', '3600', 3600],
      ['CROSSBAR_TIMEOUT_MS', '100', 100],
      ['AUTH_CACHE_TTL_S', '0', 0],
      ['AUTH_NEGATIVE_TTL_S', '3600', 3600],
      ['AUTH_CACHE_MAX', '10000000', 10_000_000],
      ['AUTH_REVALIDATE_S', '1', 1],
      ['AUTH_OUTAGE_GRACE_S', '0', 0],
      ['AMQP_MAX_MESSAGE_BYTES', '65536', 65536],
      ['AMQP_MAX_MESSAGE_BYTES', '67108864', 67_108_864],
      ['PRESENCE_REALM_CHECK_S', '1', 1],
      ['MAX_OUTBOUND_BYTES', '65536', 65536],
      ['REPLAY_WINDOW_S', '0', 0],
      ['REPLAY_PREFETCH', '1', 1],
      ['MAX_OUTBOUND_BYTES', '16384', 16384],
      ['CROSSBAR_MAX_CONCURRENT', '1', 1],
      ['CROSSBAR_MAX_QUEUED', '0', 0],
      ['MAX_BROKER_KEYS_PER_ACCOUNT', '1', 1],
    ];

    it.each(valid)('%s=%j -> %d', (name, value, expected) => {
      const env = loadEnvironment({ [name]: value });
      const parsed: unknown = env[name as keyof Environment];
      expect(typeof parsed).toBe('number');
      expect(parsed).toBe(expected);
    });

    const invalid: ReadonlyArray<readonly [string, string]> = [
      ['PORT', 'abc'],
      ['PORT', '1.5'],
      ['PORT', '1e3'],
      ['PORT', '0x10'],
      ['PORT', '12abc'],
      ['PORT', '-1'],
      ['PORT', '65536'],
      ['AMQP_RECONNECT_S', '0'],
      ['AMQP_PREFETCH', '0'],
      ['FLEET_LISTING_TIMEOUT_MS', '10'],
      ['AMQP_EXCHANGE_CHECK_S', '-1'],
      ['AMQP_EXCHANGE_CHECK_S', '3601'],
      ['CROSSBAR_TIMEOUT_MS', '99'],
      ['CROSSBAR_TIMEOUT_MS', '60001'],
      ['AUTH_CACHE_TTL_S', '86401'],
      ['AUTH_NEGATIVE_TTL_S', '-5'],
      ['AUTH_CACHE_MAX', '0'],
      ['AUTH_REVALIDATE_S', '0'],
      ['AUTH_OUTAGE_GRACE_S', '86401'],
      // Below 64 KiB real events would be refused; above 64 MiB one message could stall the node.
      ['AMQP_MAX_MESSAGE_BYTES', '65535'],
      ['AMQP_MAX_MESSAGE_BYTES', '67108865'],
      ['PRESENCE_REALM_CHECK_S', '0'],
      ['MAX_OUTBOUND_BYTES', '16383'],
      ['REPLAY_WINDOW_S', '-1'],
      ['REPLAY_CONCURRENCY', '0'],
      ['REPLAY_MAX_BYTES', '1000'],
      ['REPLAY_STREAM', 'has space'],
      ['MAX_OUTBOUND_BYTES', '1073741825'],
      ['MAX_OUTBOUND_BYTES', '1MiB'],
      ['CROSSBAR_MAX_CONCURRENT', '0'],
      ['CROSSBAR_MAX_CONCURRENT', '10001'],
      ['CROSSBAR_MAX_QUEUED', '-1'],
      ['MAX_BROKER_KEYS_PER_ACCOUNT', '0'],
    ];

    it.each(invalid)('rejects %s=%j', (name, value) => {
      const error = failureOf({ [name]: value });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0].startsWith(`${name}=${JSON.stringify(value)}: `)).toBe(true);
    });
  });

  it.each([
    ['HOST', 'bad host!'],
    ['AMQP_URL', 'http://rabbit:5672'],
    ['AMQP_URL', 'not a url'],
    ['CROSSBAR_URL', 'ftp://crossbar/v2'],
    ['CROSSBAR_URL', 'crossbar:8000'],
    ['MAX_FRAME_BYTES', '100'],
    ['MAX_BINDINGS_PER_CONNECTION', '0'],
    ['CROSSBAR_LOOKUPS_BURST', '0'],
    ['REQUEST_RATE_BURST', '0'],
    ['REQUEST_RATE_PER_S', 'fast'],
    ['AUTH_DEADLINE_S', '0'],
    ['MAX_CONNECTIONS_PER_IP', '0'],
    ['TRUSTED_PROXIES', '10.0.0.0/33'],
    ['TRUSTED_PROXIES', 'proxy.example.com'],
    ['WS_PING_INTERVAL_S', '-1'],
    ['LEGACY_TIMEOUT_S', '1'],
    ['LEGACY_POLL_S', '600'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_LEVEL', 'INFO'],
    ['LOG_FORMAT', 'xml'],
  ])('rejects %s=%j', (name, value) => {
    const error = failureOf({ [name]: value });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0].startsWith(`${name}=`)).toBe(true);
  });

  describe('CORS_ORIGINS', () => {
    it.each([
      '*',
      'https://app.example.com',
      ' https://a.example.com , http://127.0.0.1:8080 ,null',
      '*,null',
    ])('takes %j', (value) => {
      expect(loadEnvironment({ CORS_ORIGINS: value }).CORS_ORIGINS).toBe(value);
    });

    it.each([
      'https://app.example.com/console',
      'https://app.example.com?x=1',
      'ftp://files.example.com',
      'app.example.com',
      'https://*.example.com',
      'https://a.example.com,,https://b.example.com',
      'https://user:pw@app.example.com',
    ])('rejects %j, naming the entry', (value) => {
      const error = failureOf({ CORS_ORIGINS: value });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toMatch(/^CORS_ORIGINS=.*: CORS_ORIGINS: /);
    });
  });

  describe('METRICS_TOKEN', () => {
    it('takes a token of 16 or more printable characters', () => {
      const token = 'scrape-Token_0123456789';
      expect(loadEnvironment({ METRICS_TOKEN: token }).METRICS_TOKEN).toBe(token);
    });

    it.each(['short', 'has a space in it!!', 'tab\tinside-a-long-token'])(
      'rejects %j without printing it',
      (value) => {
        const error = failureOf({ METRICS_TOKEN: value });
        expect(error.problems).toEqual([expect.stringMatching(/^METRICS_TOKEN="\*\*\*": /)]);
        expect(error.message).not.toContain(value);
      },
    );
  });

  it('names every bad variable in one error, one line each', () => {
    const bad = {
      PORT: 'abc',
      HOST: 'bad host!',
      AMQP_URL: 'http://rabbit:5672',
      CROSSBAR_URL: 'ftp://crossbar/v2',
      CROSSBAR_TIMEOUT_MS: '50',
      AUTH_NEGATIVE_TTL_S: '3601',
      LOG_LEVEL: 'loud',
      LOG_FORMAT: 'xml',
    };
    const error = failureOf({ ...bad, AMQP_PREFETCH: '10', AUTH_CACHE_TTL_S: '30' });

    expect(error.name).toBe('InvalidEnvironmentError');
    expect(error.problems).toHaveLength(Object.keys(bad).length);
    expect(error.problems.map((line) => line.split('=')[0]).sort()).toEqual(
      Object.keys(bad).sort(),
    );
    for (const name of Object.keys(bad)) expect(error.message).toContain(`  - ${name}=`);
    expect(error.message).not.toContain('AMQP_PREFETCH');
    expect(error.message).not.toContain('AUTH_CACHE_TTL_S');
    expect(error.message.split('\n')).toHaveLength(1 + Object.keys(bad).length);
  });

  describe('credentials in a bad AMQP_URL', () => {
    // [bad AMQP_URL, pieces of the password that must not appear]
    const redacted: ReadonlyArray<readonly [string, readonly string[]]> = [
      ['http://guest:s3cret@rabbit:5672', ['s3cret']],
      ['amqp://guest:s3cret@rabbit:99999', ['s3cret']],
      ['amqp://guest:s3cret@', ['s3cret']],
      ['amqp://guest:s3cret@rabbit host', ['s3cret']],
    ];

    it.each(redacted)('are redacted from the error for %j', (value, secrets) => {
      const error = failureOf({ AMQP_URL: value });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toMatch(/^AMQP_URL="[a-z]+:\/\/\*\*\*@/);
      for (const secret of secrets) {
        expect(error.message).not.toContain(secret);
        expect(error.problems[0]).not.toContain(secret);
      }
    });

    // Passwords may hold unescaped '/' or '@', and a URL may lack its scheme.
    const leaking: ReadonlyArray<readonly [string, readonly string[]]> = [
      ['guest:s3cret@rabbit:5672', ['s3cret']],
      ['amqp://guest:s3/cret@rabbit:5672', ['s3/cret', 'cret']],
      ['amqp://guest:s3@cret@rabbit:5672', ['s3@cret', 'cret']],
    ];

    it.each(leaking)('are redacted from the error for %j', (value, secrets) => {
      const error = failureOf({ AMQP_URL: value });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0].startsWith('AMQP_URL=')).toBe(true);
      for (const secret of secrets) expect(error.message).not.toContain(secret);
    });
  });

  it('ignores unknown variables', () => {
    const env = loadEnvironment({
      FOO: 'bar',
      PATH: '/usr/bin',
      port: 'not-an-int',
      BLACKHOLE_PORT: 'x',
      PORT: '1234',
    });
    expect(env.PORT).toBe(1234);
    expect(Object.keys(env).sort()).toEqual(Object.keys(DEFAULTS).sort());
    expect(env).not.toHaveProperty('FOO');
  });

  describe('TLS files', () => {
    let certificates: TestCertificates;
    let gateway: SelfSignedCertificate;
    let stranger: SelfSignedCertificate;
    const file = (name: string, content: string): string => {
      const path = join(certificates.dir, name);
      writeFileSync(path, content);
      return path;
    };

    beforeAll(() => {
      certificates = TestCertificates.create();
      gateway = certificates.selfSigned('gateway');
      stranger = certificates.selfSigned('stranger');
    });
    afterAll(() => certificates.remove());

    it('leaves TLS off when neither file is set', () => {
      const env = loadEnvironment({});
      expect(readTlsCredentials(env)).toBeUndefined();
      expect(httpScheme(env)).toBe('http');
    });

    it('takes a certificate and its key, and a separate chain', () => {
      const env = loadEnvironment({
        TLS_CERT_FILE: gateway.certFile,
        TLS_KEY_FILE: gateway.keyFile,
        TLS_CA_FILE: stranger.certFile,
      });
      expect(env.TLS_CERT_FILE).toBe(gateway.certFile);
      expect(env.TLS_KEY_FILE).toBe(gateway.keyFile);
      expect(env.TLS_CA_FILE).toBe(stranger.certFile);
      expect(httpScheme(env)).toBe('https');
      const credentials = readTlsCredentials(env);
      expect(credentials?.cert.toString()).toBe(gateway.cert);
      expect(credentials?.ca?.toString()).toBe(stranger.cert);
    });

    it.each([
      ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'set both or neither'],
      ['TLS_KEY_FILE', 'TLS_CERT_FILE', 'set both or neither'],
      ['TLS_CA_FILE', 'TLS_CERT_FILE', 'it only completes the chain of TLS_CERT_FILE'],
    ])('rejects %s without %s', (name, missing, hint) => {
      const path = name === 'TLS_KEY_FILE' ? gateway.keyFile : gateway.certFile;
      const error = failureOf({ [name]: path });
      expect(error.problems).toEqual([
        `${name}=${JSON.stringify(path)}: ${name} is set but ${missing} is not; ${hint}`,
      ]);
    });

    it('rejects files it cannot read, naming the variable, the path and the reason', () => {
      const missing = join(certificates.dir, 'missing.pem');
      const error = failureOf({ TLS_CERT_FILE: missing, TLS_KEY_FILE: certificates.dir });
      expect(error.problems).toEqual([
        `TLS_CERT_FILE=${JSON.stringify(missing)}: cannot read ${missing} (ENOENT)`,
        `TLS_KEY_FILE=${JSON.stringify(certificates.dir)}: cannot read ${certificates.dir} (EISDIR)`,
      ]);
    });

    it('rejects files that hold the wrong PEM, or none', () => {
      const notPem = file('not-pem.txt', 'hello\n');
      const error = failureOf({ TLS_CERT_FILE: notPem, TLS_KEY_FILE: gateway.certFile });
      expect(error.problems).toEqual([
        `TLS_CERT_FILE=${JSON.stringify(notPem)}: ${notPem} holds no PEM certificate`,
        `TLS_KEY_FILE=${JSON.stringify(gateway.certFile)}: ${gateway.certFile} holds no PEM private key`,
      ]);
    });

    it('rejects an encrypted key, which nothing could unlock at boot', () => {
      const encrypted = join(certificates.dir, 'encrypted.key.pem');
      execFileSync('openssl', [
        'pkcs8',
        '-topk8',
        '-in',
        gateway.keyFile,
        '-out',
        encrypted,
        '-passout',
        'pass:secret',
      ]);
      const error = failureOf({ TLS_CERT_FILE: gateway.certFile, TLS_KEY_FILE: encrypted });
      expect(error.problems).toEqual([
        `TLS_KEY_FILE=${JSON.stringify(encrypted)}: ${encrypted} holds an encrypted private key; give an unencrypted one`,
      ]);
    });

    it("rejects a key that is not the certificate's, and a corrupt certificate, with OpenSSL's reason", () => {
      const mismatched = failureOf({
        TLS_CERT_FILE: gateway.certFile,
        TLS_KEY_FILE: stranger.keyFile,
      });
      expect(mismatched.problems).toHaveLength(1);
      expect(mismatched.problems[0]).toMatch(
        /^TLS_KEY_FILE=".*stranger\.key\.pem": makes no TLS context with TLS_CERT_FILE \(.*key values mismatch.*\)$/,
      );

      const corrupt = file(
        'corrupt.cert.pem',
        '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n',
      );
      const error = failureOf({ TLS_CERT_FILE: corrupt, TLS_KEY_FILE: gateway.keyFile });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toMatch(
        /^TLS_KEY_FILE=.*: makes no TLS context with TLS_CERT_FILE \(.+\)$/,
      );
    });

    it('lists TLS problems with every other bad variable in one error', () => {
      const error = failureOf({ PORT: 'abc', TLS_KEY_FILE: gateway.keyFile });
      expect(error.problems.map((line) => line.split('=')[0])).toEqual(['PORT', 'TLS_KEY_FILE']);
    });
  });

  it('reads the former WS_RATE_* names when REQUEST_RATE_* are unset', () => {
    const env = loadEnvironment({ WS_RATE_BURST: '7', WS_RATE_PER_S: '2' });
    expect(env.REQUEST_RATE_BURST).toBe(7);
    expect(env.REQUEST_RATE_PER_S).toBe(2);
    const both = loadEnvironment({ WS_RATE_BURST: '7', REQUEST_RATE_BURST: '9' });
    expect(both.REQUEST_RATE_BURST).toBe(9);
  });

  it('takes IPv4 and IPv6 addresses and CIDRs as TRUSTED_PROXIES', () => {
    const env = loadEnvironment({ TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.7,::1, fd00::/8' });
    expect(env.TRUSTED_PROXIES).toBe('10.0.0.0/8, 192.0.2.7,::1, fd00::/8');
  });
});
