/**
 * `@tributary/protocol`: the contract between Tributary's coordinator and its
 * clients, in any language.
 *
 * - the generated protobuf-es messages and service descriptors of
 *   `tributary.v1` (from `proto/src/gen/`, never edited by hand) and the
 *   grpc-js adapter that serves and calls them;
 * - machine-readable error details (`google.rpc.ErrorInfo` with a
 *   `tributary.v1.ErrorReason`, `google.rpc.BadRequest`) and their encoding;
 * - the NATS announcement of a merged round and where its adapter is stored;
 * - the safetensors header reader and PEFT LoRA tensor naming that both ends
 *   check adapters with;
 * - the rule for each kind of id (`ids.ts`) and the limits of an update's
 *   header, content hashes included (`update-header.ts`);
 * - the `Log` interface every package logs through.
 *
 * @example
 * import { ClientService, JoinRequestSchema, makeClient } from "@tributary/protocol";
 * import { create } from "@bufbuild/protobuf";
 * import * as grpc from "@grpc/grpc-js";
 *
 * const client = makeClient(ClientService, "127.0.0.1:7443", grpc.credentials.createInsecure());
 * client.join(create(JoinRequestSchema, { federationId: "support-bot" }), (err, res) => console.log(res));
 */
export * from "./adapter-format/dtype.ts";
export * from "./adapter-format/errors.ts";
export * from "./adapter-format/json-depth.ts";
export * from "./adapter-format/lora-keys.ts";
export * from "./adapter-format/safetensors-header.ts";
export * from "./announcement.ts";
export * from "./coordinator-target.ts";
export * from "./error-details.ts";
export {
  type AdapterObjects as AdapterObjectsMessage,
  AdapterObjectsSchema,
  file_tributary_v1_announcement,
  type RoundAnnouncement as RoundAnnouncementMessage,
  RoundAnnouncementSchema,
} from "./gen/tributary/v1/announcement_pb.ts";
export * from "./gen/tributary/v1/client_pb.ts";
export * from "./gen/tributary/v1/errors_pb.ts";
export * from "./gen/tributary/v1/federation_pb.ts";
export * from "./gen/tributary/v1/operator_pb.ts";
export * from "./grpc-adapter.ts";
export * from "./ids.ts";
export * from "./log.ts";
export * from "./privacy/gaussian.ts";
export * from "./privacy/log-math.ts";
export * from "./privacy/rdp.ts";
export * from "./update-header.ts";
