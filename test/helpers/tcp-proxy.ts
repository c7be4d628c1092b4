/**
 * A throttled TCP proxy for the integration tests: client→server bytes at a
 * fixed rate, so a test can act mid-upload, and connections that can be cut
 * as a network failure would.
 */
import { createConnection, createServer } from "node:net";

/**
 * A throttled TCP proxy to `target` (client→server bytes at `bytesPerSecond`,
 * so a test can act mid-upload) whose connections can be cut, as a network
 * failure would.
 */
export function startProxy(
  target: string,
  bytesPerSecond: number,
): Promise<{
  address: string;
  /** Client→server bytes forwarded since the proxy started. */
  forwarded: () => number;
  /** Destroys every open connection (new ones are accepted). */
  cut: () => void;
  close: () => Promise<void>;
}> {
  const at = target.lastIndexOf(":");
  const [host, port] = [target.slice(0, at), Number(target.slice(at + 1))];
  let total = 0;
  const pairs = new Set<() => void>();
  const proxy = createServer((client) => {
    const upstream = createConnection({ host, port });
    const cut = () => {
      pairs.delete(cut);
      client.destroy();
      upstream.destroy();
    };
    pairs.add(cut);
    client.on("data", (chunk: Buffer) => {
      total += chunk.length;
      upstream.write(chunk);
      client.pause();
      setTimeout(() => client.resume(), (chunk.length / bytesPerSecond) * 1000);
    });
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    for (const socket of [client, upstream]) {
      socket.on("error", cut);
      socket.on("close", cut);
    }
  });
  return new Promise((resolve) => {
    proxy.listen(0, "127.0.0.1", () => {
      const { port: own } = proxy.address() as { port: number };
      resolve({
        address: `127.0.0.1:${own}`,
        forwarded: () => total,
        cut: () => {
          for (const cut of [...pairs]) cut();
        },
        close: () =>
          new Promise<void>((done) => {
            for (const cut of [...pairs]) cut();
            proxy.close(() => done());
          }),
      });
    });
  });
}
