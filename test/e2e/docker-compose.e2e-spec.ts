import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { loadEnvironment } from '../../src/config/environment';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');

interface ComposeService {
  image?: string;
  build?: { dockerfile?: string };
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  networks?: string[] | Record<string, { ipv4_address?: string }>;
  profiles?: string[];
}

interface Compose {
  services: Record<string, ComposeService>;
  networks: Record<string, { ipam: { config: { subnet: string }[] } }>;
}

/** `${NAME:-default}` as docker compose expands it with NAME unset. */
function withDefaults(value: string): string {
  return value.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
}

function ipv4InSubnet(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const toNumber = (address: string): number =>
    address.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
  const mask = Number(bits) === 0 ? 0 : 2 ** 32 - 2 ** (32 - Number(bits));
  return (toNumber(ip) & mask) >>> 0 === (toNumber(base) & mask) >>> 0;
}

/**
 * Docker cannot run here: the compose file, HAProxy's configuration and the certificate script
 * are checked for their wiring instead (and HAProxy's configuration by HAProxy itself when it
 * is installed).
 */
describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as Compose;
  const haproxyCfg = readFileSync(join(ROOT, 'deploy/haproxy/haproxy.cfg'), 'utf8');
  const gateways = Object.entries(compose.services).filter(([, s]) => s.build && !s.profiles);

  it('runs two gateway replicas built from the Dockerfile, each with a valid environment', () => {
    expect(gateways.map(([name]) => name)).toEqual(['blackhole-1', 'blackhole-2']);
    for (const [, service] of gateways) {
      expect(service.build?.dockerfile).toBe('Dockerfile');
      const environment = Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([k, v]) => [k, withDefaults(String(v))]),
      );
      // Every variable is one Blackhole reads, with a value it accepts.
      expect(() => loadEnvironment(environment)).not.toThrow();
      expect(environment.AMQP_URL).toBe('amqp://guest:guest@rabbitmq:5672');
      expect(service.depends_on?.rabbitmq.condition).toBe('service_healthy');
    }
  });

  it('lets the operator point the stack at a real Kazoo from the environment', () => {
    for (const [, service] of [...gateways, ['demo', compose.services.demo] as const]) {
      expect(service.environment?.AMQP_URL).toMatch(
        /^\$\{AMQP_URL:-amqp:\/\/[^}]*@rabbitmq:5672\}$/,
      );
    }
    for (const [, service] of gateways) {
      expect(service.environment?.CROSSBAR_URL).toMatch(/^\$\{CROSSBAR_URL:-http/);
    }
  });

  it('publishes host ports on 127.0.0.1 only, and not on the ports of a local RabbitMQ', () => {
    const published = Object.values(compose.services).flatMap((s) => s.ports ?? []);
    expect(published.length).toBeGreaterThan(0);
    for (const port of published) {
      const [address, hostPort] = withDefaults(port).split(':');
      expect(address).toBe('127.0.0.1');
      expect(['5672', '15672']).not.toContain(hostPort);
    }
  });

  it('puts HAProxy in front of every replica, healthy first, trusted for X-Forwarded-For alone', () => {
    const haproxy = compose.services.haproxy;
    const servers = [...haproxyCfg.matchAll(/^\s*server (\S+) (\S+):(\d+) check/gm)];
    expect(servers.map((m) => m[2]).sort()).toEqual(gateways.map(([name]) => name).sort());
    for (const [, , , port] of servers) expect(port).toBe('5555');
    for (const [name] of gateways) {
      expect(haproxy.depends_on?.[name].condition).toBe('service_healthy');
    }
    expect(haproxyCfg).toMatch(/option httpchk GET \/health/);
    const address = (haproxy.networks as Record<string, { ipv4_address: string }>).blackhole
      .ipv4_address;
    const subnet = compose.networks.blackhole.ipam.config[0].subnet;
    expect(ipv4InSubnet(address, subnet)).toBe(true);
    for (const [, service] of gateways) {
      expect(service.environment?.TRUSTED_PROXIES).toBe(address);
    }
    // A client's own X-Forwarded-For never reaches the gateways.
    expect(haproxyCfg).toMatch(/http-request del-header X-Forwarded-For\s+option forwardfor/);
  });

  it('keeps polling sessions on one node and tunnels WebSockets', () => {
    expect(haproxyCfg).toMatch(/^\s*cookie \S+ insert indirect nocache/m);
    expect(haproxyCfg).toMatch(/^\s*balance source/m);
    expect(haproxyCfg).toMatch(/^\s*timeout tunnel /m);
  });

  it('terminates TLS with the certificate the script writes, mounted where HAProxy reads it', () => {
    const script = readFileSync(join(ROOT, 'scripts/make-self-signed-cert.sh'), 'utf8');
    expect(script).toMatch(/dir=deploy\/haproxy\/certs/);
    expect(script).toMatch(/"\$dir\/blackhole\.pem"/);
    const mounts = compose.services.haproxy.volumes ?? [];
    expect(mounts).toContain('./deploy/haproxy/certs:/usr/local/etc/haproxy/certs:ro');
    expect(mounts).toContain('./deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
    expect(haproxyCfg).toMatch(
      /bind :8443 ssl crt \/usr\/local\/etc\/haproxy\/certs\/blackhole\.pem/,
    );
    expect(compose.services.haproxy.ports).toEqual(['127.0.0.1:${COMPOSE_HTTPS_PORT:-8443}:8443']);
  });

  it('installs the production dependency set alone in the image', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    expect(runtime).toMatch(/npm ci --omit=dev/);
    expect(runtime).toMatch(/HEALTHCHECK .*\/health/s);
    expect(runtime).toMatch(/CMD \["node", "dist\/main.js"\]/);
  });

  const haproxyInstalled = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p));
  (haproxyInstalled ? it : it.skip)(
    'is a configuration HAProxy accepts, with a certificate made by the script',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'blackhole-haproxy-'));
      try {
        await run('bash', [join(ROOT, 'scripts/make-self-signed-cert.sh')], {
          cwd: ROOT,
          env: { ...process.env },
        });
        const config = haproxyCfg
          .replaceAll('/usr/local/etc/haproxy/certs', join(ROOT, 'deploy/haproxy/certs'))
          .replace(/blackhole-(\d):5555/g, '127.0.0.1:5555');
        writeFileSync(join(dir, 'haproxy.cfg'), config);
        await run(haproxyInstalled!, ['-c', '-q', '-f', join(dir, 'haproxy.cfg')]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
