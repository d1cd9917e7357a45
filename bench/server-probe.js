'use strict';
/**
 * Preloaded (`node --expose-gc -r bench/server-probe.js …`) into the servers the bench measures,
 * the gateway and the bare socket.io server alike, so both are collected and profiled the same
 * way. Talks over the IPC channel the bench opens:
 *
 *   {type: 'bench:gc', seq}                  → {seq, heapUsed} after a full GC
 *   {type: 'bench:profile-start', seq}       → {seq} once the V8 CPU profiler runs
 *   {type: 'bench:profile-stop', seq, file}  → {seq} once the profile is written to `file`
 *   {type: 'bench:heap-snapshot', seq, file} → {seq} once a heap snapshot is written to `file`
 *
 * Signals would be simpler, but Nest's shutdown hooks listen to SIGUSR2 and most others, and
 * `--cpu-prof` only writes its profile on a clean exit, which Nest's SIGTERM handling is not.
 */
const fs = require('node:fs');

if (process.send) {
  let session;
  const reply = (message, extra = {}) =>
    process.send({ type: message.type, seq: message.seq, ...extra });
  const post = (method, params = {}) =>
    new Promise((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    );

  process.on('message', (message) => {
    if (!message || typeof message.type !== 'string' || !message.type.startsWith('bench:')) return;
    if (message.type === 'bench:gc' && typeof global.gc === 'function') {
      // Twice, with a turn of the event loop in between: the first pass can leave garbage that
      // finalizers (weak maps, sockets' buffers) only release for the second.
      global.gc();
      setImmediate(() => {
        global.gc();
        const spaces = {};
        for (const space of require('node:v8').getHeapSpaceStatistics()) {
          spaces[space.space_name] = Math.round(space.physical_space_size / 1024);
        }
        reply(message, {
          heapUsed: process.memoryUsage().heapUsed,
          spaces,
          memory: process.memoryUsage(),
        });
      });
    } else if (message.type === 'bench:heap-snapshot') {
      require('node:v8').writeHeapSnapshot(message.file);
      reply(message);
    } else if (message.type === 'bench:profile-start') {
      const inspector = require('node:inspector');
      session = new inspector.Session();
      session.connect();
      post('Profiler.enable')
        .then(() => post('Profiler.setSamplingInterval', { interval: 250 }))
        .then(() => post('Profiler.start'))
        .then(() => reply(message));
    } else if (message.type === 'bench:profile-stop') {
      post('Profiler.stop').then(({ profile }) => {
        fs.writeFileSync(message.file, JSON.stringify(profile));
        session.disconnect();
        reply(message);
      });
    }
  });
  // The IPC channel must not keep a finished process alive.
  process.channel.unref();
}
