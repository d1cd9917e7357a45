import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(__dirname, '..');
const DEMO = join(SRC, 'demo');

/** Relative module specifiers of a TypeScript file: static imports, re-exports, import(), require(). */
function relativeImports(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const pattern =
    /(?:\bfrom\s+|\bimport\s+|\bimport\s*\(\s*|\brequire\s*\(\s*)['"](\.{1,2}\/[^'"]*)['"]/g;
  return [...source.matchAll(pattern)].map((match) => match[1]);
}

function resolveModule(from: string, specifier: string): string {
  const base = resolve(dirname(from), specifier);
  const candidate = [`${base}.ts`, join(base, 'index.ts'), base].find(
    (path) => path.endsWith('.ts') && existsSync(path),
  );
  if (candidate === undefined) throw new Error(`cannot resolve ${specifier} from ${from}`);
  return candidate;
}

/** Every file of `src` that `entry` loads, directly or not (relative imports only). */
function reachableFrom(entry: string): Set<string> {
  const seen = new Set<string>();
  const pending = [entry];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const specifier of relativeImports(file)) pending.push(resolveModule(file, specifier));
  }
  return seen;
}

const inDemo = (files: Set<string>): string[] =>
  [...files].filter((file) => file.startsWith(`${DEMO}/`)).map((file) => relative(SRC, file));

describe('entry points', () => {
  it('`npm start` (src/main.ts) never loads the demo, directly or through anything it imports', () => {
    const loaded = reachableFrom(join(SRC, 'main.ts'));
    expect(loaded).toContain(join(SRC, 'bootstrap.ts'));
    expect(loaded.size).toBeGreaterThan(20);
    expect(inDemo(loaded)).toEqual([]);
  });

  it('`npm run demo` (src/demo/main.ts) loads the gateway, the stand-in and the simulator', () => {
    const loaded = reachableFrom(join(DEMO, 'main.ts'));
    expect(loaded).toContain(join(SRC, 'bootstrap.ts'));
    expect(inDemo(loaded).sort()).toEqual([
      'demo/crossbar-stand-in.ts',
      'demo/event-simulator.ts',
      'demo/kazoo-events.ts',
      'demo/main.ts',
    ]);
  });
});
