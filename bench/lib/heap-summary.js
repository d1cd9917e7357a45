'use strict';
/**
 * Compares two V8 heap snapshots of the same process (idle, then with N connections) and lists
 * which kinds of objects the connections added, by constructor name and self size. Usable on
 * its own: `node bench/lib/heap-summary.js <before> <after> [connections] [top]`.
 */
const fs = require('node:fs');

/** Self size and count per `type:name` (names of strings and code are grouped by type). */
function tally(file) {
  const snapshot = JSON.parse(fs.readFileSync(file, 'utf8'));
  const {
    node_fields: fields,
    node_types: [types],
  } = snapshot.snapshot.meta;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const totals = new Map();
  const { nodes, strings } = snapshot;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    const grouped = [
      'string',
      'concatenated string',
      'sliced string',
      'code',
      'number',
      'hidden',
      'array',
    ].includes(type);
    const key = grouped ? `(${type})` : `${strings[nodes[i + nameAt]]}`;
    const entry = totals.get(key) || { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += nodes[i + sizeAt];
    totals.set(key, entry);
  }
  return totals;
}

function compare(beforeFile, afterFile, connections = 1, top = 25) {
  const before = tally(beforeFile);
  const after = tally(afterFile);
  const rows = [];
  for (const [key, a] of after) {
    const b = before.get(key) || { count: 0, bytes: 0 };
    rows.push({ key, count: a.count - b.count, bytes: a.bytes - b.bytes });
  }
  rows.sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((sum, r) => sum + r.bytes, 0);
  const lines = [
    `Heap growth ${(total / 1024 / connections).toFixed(1)} KiB per connection (self sizes), by constructor, top ${top}:`,
  ];
  for (const r of rows.slice(0, top)) {
    lines.push(
      `  ${(r.bytes / connections).toFixed(0).padStart(7)} B/conn  ${(r.count / connections).toFixed(1).padStart(6)} objects/conn  ${r.key.slice(0, 80)}`,
    );
  }
  return lines.join('\n');
}

if (require.main === module) {
  const [before, after, connections, top] = process.argv.slice(2);
  process.stdout.write(`${compare(before, after, Number(connections) || 1, Number(top) || 25)}\n`);
}

module.exports = { compare };
