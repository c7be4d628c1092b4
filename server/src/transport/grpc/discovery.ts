/**
 * What standard gRPC tooling looks for on the coordinator's port: the
 * `grpc.health.v1.Health` service (load balancers, Kubernetes probes; every
 * service SERVING while the coordinator runs, NOT_SERVING while it drains
 * before shutting down) and server reflection (`grpc.reflection.v1` and
 * `v1alpha`, for grpcurl-style tools), built from the same descriptors the
 * protocol package is generated from.
 */
import { toBinary } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_duration,
  file_google_protobuf_timestamp,
} from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import {
  ClientService,
  file_tributary_v1_announcement,
  file_tributary_v1_client,
  file_tributary_v1_errors,
  file_tributary_v1_federation,
  file_tributary_v1_operator,
  OperatorService,
} from "@tributary/protocol";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";

/** The fully qualified services the coordinator serves (health reports each, and `""` for the server). */
export const SERVED_SERVICES = [ClientService.typeName, OperatorService.typeName] as const;

/** Switches what the health service reports. */
export interface HealthControl {
  /** SERVING (true) or NOT_SERVING (false), for the server (`""`) and every served service. */
  setServing(serving: boolean): void;
  serving(): boolean;
}

/** The protocol's file descriptors, serialized, as reflection wants them. */
function tributaryDescriptors(): Buffer[] {
  return [
    file_google_protobuf_duration,
    file_google_protobuf_timestamp,
    file_tributary_v1_federation,
    file_tributary_v1_client,
    file_tributary_v1_operator,
    file_tributary_v1_errors,
    file_tributary_v1_announcement,
  ].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
}

/**
 * Adds health and reflection to `server`; health starts SERVING.
 *
 * @example
 * const health = addHealthAndReflection(server);
 * process.once("SIGTERM", () => health.setServing(false));
 */
export function addHealthAndReflection(server: grpc.Server): HealthControl {
  let serving = true;
  const names = ["", ...SERVED_SERVICES];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, "SERVING" as const])));
  health.addToServer(server);
  const healthDefinition = loadSync(healthProtoPath);
  // Reflection reads only each entry's fileDescriptorProtos.
  const definition = {
    ...healthDefinition,
    "tributary.v1": { fileDescriptorProtos: tributaryDescriptors() },
  } as unknown as PackageDefinition;
  new ReflectionService(definition).addToServer(server);
  return {
    setServing(next) {
      serving = next;
      for (const n of names) health.setStatus(n, next ? "SERVING" : "NOT_SERVING");
    },
    serving: () => serving,
  };
}
