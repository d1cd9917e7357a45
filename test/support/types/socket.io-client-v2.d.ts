// socket.io-client 2.x ships no types; the tests use this small part of its API.
declare module 'socket.io-client-v2' {
  interface LegacySocket {
    connected: boolean;
    on(event: string, listener: (...args: unknown[]) => void): LegacySocket;
    emit(event: string, ...args: unknown[]): LegacySocket;
    close(): LegacySocket;
  }
  function io(url: string, options?: Record<string, unknown>): LegacySocket;
  export = io;
}
