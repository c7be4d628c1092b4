/**
 * The gRPC port's TCP listener. grpc-js closes an idle connection gracefully
 * (HTTP/2 GOAWAY, then a FIN) and waits for the peer to close its side, so a
 * peer that never reads — or never even starts HTTP/2 — would keep its socket
 * open for ever. This listener owns the sockets, hands each to grpc-js
 * through a connection injector, and destroys any socket the peer has not
 * closed `closeGraceMs` after the coordinator finished its side.
 */
import { createServer, type Server as NetServer, type Socket } from "node:net";
import type * as grpc from "@grpc/grpc-js";
import { raiseReceiveWindows } from "./receive-windows.ts";

/** Default {@link GrpcListenerOptions.closeGraceMs}. */
export const CLOSE_GRACE_MS = 5_000;

/** Options of {@link listenGrpc}. */
export interface GrpcListenerOptions {
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  /** How long a peer may keep a socket open after the coordinator closed its side (default {@link CLOSE_GRACE_MS}). */
  readonly closeGraceMs?: number;
}

/** A listening gRPC port. */
export interface GrpcListener {
  /** The port bound. */
  readonly port: number;
  /** Sockets open now. */
  readonly open: number;
  /** Whether its connections get the coordinator's receive windows (`receive-windows.ts`), not Node's 64 KiB. */
  readonly windowsRaised: boolean;
  /**
   * Stops accepting connections and resolves once every socket is closed;
   * with `destroy`, ends the ones still open first. May be called again (to destroy).
   */
  close(options?: { readonly destroy?: boolean }): Promise<void>;
}

function listen(net: NetServer, host: string, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    net.once("error", reject);
    net.listen(port, host, () => {
      net.off("error", reject);
      const address = net.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}

/**
 * Listens on `host:port` and serves `server`'s services there with `credentials`.
 * Rejects with the listen error (`EADDRINUSE`, …) when the port cannot be bound.
 *
 * @example
 * const listener = await listenGrpc(server, grpc.ServerCredentials.createInsecure(), { host: "127.0.0.1", port: 0 });
 */
export async function listenGrpc(
  server: grpc.Server,
  credentials: grpc.ServerCredentials,
  options: GrpcListenerOptions,
): Promise<GrpcListener> {
  const graceMs = options.closeGraceMs ?? CLOSE_GRACE_MS;
  const injector = server.createConnectionInjector(credentials);
  const windowsRaised = raiseReceiveWindows(server) > 0;
  const sockets = new Set<Socket>();
  const net = createServer((socket) => {
    sockets.add(socket);
    socket.once("finish", () => {
      // The coordinator has sent its FIN: the peer has `graceMs` to close its side.
      setTimeout(() => socket.destroy(), graceMs).unref();
    });
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    injector.injectConnection(socket);
  });
  const port = await listen(net, options.host, options.port);
  let closed: Promise<void> | undefined;
  return {
    port,
    windowsRaised,
    get open() {
      return sockets.size;
    },
    async close(closeOptions = {}) {
      closed ??= new Promise<void>((resolve) => net.close(() => resolve()));
      if (closeOptions.destroy === true) {
        injector.destroy();
        for (const s of sockets) s.destroy();
      }
      await closed;
    },
  };
}
