'use strict';
/**
 * Reads a V8 `.cpuprofile` and lists where the time went: self time by function (all code),
 * and inclusive time of the gateway's own functions, mapped from `dist/` back to `src/` through
 * the build's source maps. Usable on its own: `node bench/lib/profile-summary.js <file> [top]`.
 */
const fs = require('node:fs');
const path = require('node:path');
const { SourceMap } = require('node:module');
const { fileURLToPath } = require('node:url');

const ROOT = path.resolve(__dirname, '..', '..');
const maps = new Map();

/** `src/…ts:line` for a position in the built gateway, else `<package or file>:line`. */
function where(url, line) {
  if (!url) return '(native)';
  const file = url.startsWith('file:') ? fileURLToPath(url) : url;
  const dist = path.join(ROOT, 'dist') + path.sep;
  if (file.startsWith(dist)) {
    if (!maps.has(file)) {
      try {
        maps.set(file, new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8'))));
      } catch {
        maps.set(file, undefined);
      }
    }
    const map = maps.get(file);
    const entry = map && map.findEntry(line, 0);
    if (entry && entry.originalSource) {
      const source = path.resolve(path.dirname(file), entry.originalSource);
      return `${path.relative(ROOT, source)}:${entry.originalLine + 1}`;
    }
    return `${path.relative(ROOT, file)}:${line + 1}`;
  }
  const modules = file.lastIndexOf(`node_modules${path.sep}`);
  const short = modules === -1 ? file : file.slice(modules + 'node_modules/'.length);
  return `${short}:${line + 1}`;
}

function summarize(file, top = 25) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes)
    for (const child of node.children || []) parent.set(child, node.id);
  // Sample time: deltas are the intervals before each sample.
  const selfUs = new Map();
  profile.samples.forEach((id, i) =>
    selfUs.set(id, (selfUs.get(id) || 0) + (profile.timeDeltas[i] || 0)),
  );
  const idleIds = new Set(
    profile.nodes
      .filter((n) =>
        ['(idle)', '(program)', '(garbage collector)'].includes(n.callFrame.functionName),
      )
      .map((n) => n.id),
  );
  // Percentages are of the time the process was busy: the profile also spans the baseline's
  // rounds, during which the gateway idles.
  const idle = profile.nodes
    .filter((n) => n.callFrame.functionName === '(idle)')
    .reduce((sum, n) => sum + (selfUs.get(n.id) || 0), 0);
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0) - idle;
  const keyOf = (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    return `${functionName || '(anonymous)'} ${where(url, lineNumber)}`;
  };
  const self = new Map();
  const callers = new Map(); // key → Map(caller key → µs)
  const inclusiveOwn = new Map();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node.callFrame.functionName === '(idle)') continue;
    const key = idleIds.has(id) ? node.callFrame.functionName : keyOf(node);
    self.set(key, (self.get(key) || 0) + us);
    // The nearest caller that is JavaScript, to say where native time comes from.
    let up = parent.get(id);
    while (
      up !== undefined &&
      !byId.get(up).callFrame.url &&
      byId.get(up).callFrame.functionName !== '(root)'
    )
      up = parent.get(up);
    if (up !== undefined) {
      const by = callers.get(key) || new Map();
      const callerKey = keyOf(byId.get(up));
      by.set(callerKey, (by.get(callerKey) || 0) + us);
      callers.set(key, by);
    }
    // Inclusive time of src/ functions: walk up once per distinct function per sample stack.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur);
      const k = keyOf(frame);
      if (!k.includes(' src/') || seen.has(k)) continue;
      seen.add(k);
      inclusiveOwn.set(k, (inclusiveOwn.get(k) || 0) + us);
    }
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const lines = [
    `CPU profile ${path.relative(ROOT, file)}: ${(total / 1e6).toFixed(2)} s busy (percentages of busy time)`,
  ];
  lines.push(`  self time, top ${top} (← the JavaScript caller that most of it came from):`);
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const by = callers.get(key);
    const [caller] = by ? [...by].sort((a, b) => b[1] - a[1]) : [];
    lines.push(`  ${pct(us)}  ${key}${caller && !key.includes(' src/') ? `  ← ${caller[0]}` : ''}`);
  }
  lines.push(`  inclusive time of the gateway's own functions (src/), top ${top}:`);
  for (const [key, us] of [...inclusiveOwn].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${pct(us)}  ${key}`);
  return lines.join('\n');
}

if (require.main === module) {
  process.stdout.write(`${summarize(process.argv[2], Number(process.argv[3]) || 25)}\n`);
}

module.exports = { summarize };
