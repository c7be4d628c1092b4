/**
 * The coordinator's HTTP/2 receive windows. grpc-js leaves a server's at
 * Node's default of 64 KiB per stream and per connection (it has no server
 * option for them: grpc/grpc-node#3058), so a client can send only 64 KiB
 * of an upload before it waits for the coordinator to acknowledge it; an
 * upload stream is paused while intake writes each 1 MiB chunk, so its
 * sender stalled on every chunk. With 256 KiB per stream and 4 MiB per
 * connection the next chunk is already arriving while the last one is
 * written: with V8's heap change (`cli/heap-growth.ts`), n = 32 uploads
 * went from 7.5–8.6 s to 6.0–6.8 s of wall and the clients' CPU from
 * 4.1–4.7 s to 3.2–3.5 s (`npm run bench -- round --clients 32`,
 * BENCHMARKS.md "A heap that grows 4×"). grpc-java advertises 1 MiB per
 * stream.
 *
 * The cost is memory: an upload waiting for its turn at the upload gate
 * (`MAX_ACTIVE_UPLOADS` in `upload-gate.ts`) holds up to one stream window of its bytes in
 * the coordinator (256 KiB, was 64 KiB), and one connection at most
 * {@link CONNECTION_WINDOW_BYTES} unread.
 *
 * grpc-js keeps its HTTP/2 servers in a private map; this reaches them
 * there, and `receive-windows.test.ts` fails if a grpc-js upgrade moves it.
 */
import type { Http2SecureServer, Http2Server, ServerHttp2Session } from "node:http2";
import type * as grpc from "@grpc/grpc-js";

/** The window each stream gets (SETTINGS_INITIAL_WINDOW_SIZE): 256 KiB, four times Node's default. */
export const STREAM_WINDOW_BYTES = 256 * 1024;

/** The window of each connection, all its streams together: 4 MiB. */
export const CONNECTION_WINDOW_BYTES = 4 * 1024 * 1024;

type GrpcHttp2Server = Http2Server | Http2SecureServer;

/** The HTTP/2 servers this module already raised the windows of. */
const raised = new WeakSet<GrpcHttp2Server>();

/**
 * Raises the receive windows of every HTTP/2 server grpc-js has created for
 * `server` (one per `bindAsync` or `createConnectionInjector`): each new
 * session advertises {@link STREAM_WINDOW_BYTES} per stream in its first
 * SETTINGS and opens its connection window to {@link CONNECTION_WINDOW_BYTES}.
 * Call it after each bind or injector; servers already raised are skipped.
 * Returns how many servers it raised now; 0 with none known is what a grpc-js
 * that no longer keeps them where this looks gives (the caller should say so).
 *
 * @example
 * const injector = server.createConnectionInjector(credentials);
 * raiseReceiveWindows(server);
 */
export function raiseReceiveWindows(server: grpc.Server): number {
  const servers = (server as unknown as { http2Servers?: Map<GrpcHttp2Server, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return 0;
  let count = 0;
  for (const h2 of servers.keys()) {
    if (raised.has(h2)) continue;
    raised.add(h2);
    h2.updateSettings({ initialWindowSize: STREAM_WINDOW_BYTES });
    h2.on("session", (session: ServerHttp2Session) => {
      session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    });
    count++;
  }
  return count;
}
