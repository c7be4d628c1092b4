/**
 * The reference for `npm run bench -- round`: a bare grpc-js server with the
 * same `ClientService.SubmitUpdate` stream that only counts and hashes the
 * bytes (no storage, no validation), in its own process like the
 * coordinator, with grpc-js's default HTTP/2 windows (the coordinator's with
 * TRIBUTARY_BENCH_RAW_WINDOWS=1). Prints its port on stdout.
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  ClientService,
  createServiceDefinition,
  GRPC_SERVER_OPTIONS,
  SubmitUpdateResponseSchema,
} from "@tributary/protocol";
import { raiseReceiveWindows } from "../server/src/transport/grpc/receive-windows.ts";

const server = new grpc.Server({ ...GRPC_SERVER_OPTIONS });
const unimplemented = (_: unknown, cb: (e: Partial<grpc.ServiceError>) => void) =>
  cb({ code: grpc.status.UNIMPLEMENTED });
server.addService(createServiceDefinition(ClientService), {
  join: unimplemented,
  getUploadStatus: unimplemented,
  watchRounds: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
  fetchAdapter: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
  submitUpdate: (
    call: grpc.ServerReadableStream<{ payload: { case?: string; value?: unknown } }, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ) => {
    const hash = createHash("sha256");
    let size = 0;
    let updateId = "";
    call.on("data", (msg) => {
      if (msg.payload.case === "chunk") {
        const chunk = msg.payload.value as Uint8Array;
        hash.update(chunk);
        size += chunk.length;
      } else if (msg.payload.case === "header")
        updateId = (msg.payload.value as { updateId: string }).updateId;
    });
    call.on("end", () =>
      callback(
        null,
        create(SubmitUpdateResponseSchema, {
          updateId,
          accepted: true,
          contentHash: hash.digest("hex"),
          size: BigInt(size),
        }),
      ),
    );
  },
} as grpc.UntypedServiceImplementation);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  // `--raw-windows`: the coordinator's HTTP/2 receive windows, not grpc-js's 64 KiB.
  if (process.env.TRIBUTARY_BENCH_RAW_WINDOWS === "1" && raiseReceiveWindows(server) === 0) {
    throw new Error("could not raise the raw server's receive windows");
  }
  console.log(`port ${port}`);
});
