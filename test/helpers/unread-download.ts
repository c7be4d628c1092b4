/**
 * A FetchAdapter call whose response is never read: a raw HTTP/2 gRPC request
 * on `session`, paused, so HTTP/2 flow control stops the coordinator's writes.
 */
import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import { toBinary } from "@bufbuild/protobuf";
import { type FetchAdapterRequest, FetchAdapterRequestSchema } from "@tributary/protocol";

/** Starts a download of `req` as the client holding `token`, and never reads it. */
export function unreadDownload(
  session: ClientHttp2Session,
  token: string,
  req: FetchAdapterRequest,
): ClientHttp2Stream {
  const body = toBinary(FetchAdapterRequestSchema, req);
  const frame = new Uint8Array(5 + body.length);
  new DataView(frame.buffer).setUint32(1, body.length);
  frame.set(body, 5);
  const s = session.request({
    ":method": "POST",
    ":path": "/tributary.v1.ClientService/FetchAdapter",
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${token}`,
  });
  s.on("error", () => {});
  s.end(frame);
  s.pause();
  return s;
}
