/**
 * `@tributary/proto`: the Tributary wire protocol. Generated protobuf-es
 * messages and service descriptors of `tributary.v1` (from `proto/gen/`, never
 * edited by hand), plus the grpc-js adapter that serves and calls them.
 *
 * @example
 * import { ClientService, JoinRequestSchema, makeClient } from "@tributary/proto";
 * import { create } from "@bufbuild/protobuf";
 * import * as grpc from "@grpc/grpc-js";
 *
 * const client = makeClient(ClientService, "127.0.0.1:7443", grpc.credentials.createInsecure());
 * client.join(create(JoinRequestSchema, { federationId: "support-bot" }), (err, res) => console.log(res));
 */
export * from "../gen/tributary/v1/client_pb.ts";
export * from "../gen/tributary/v1/federation_pb.ts";
export * from "../gen/tributary/v1/operator_pb.ts";
export * from "./grpc-adapter.ts";
