/**
 * grpc-js bindings for protobuf-es v2 service descriptors: a `ServiceDefinition`
 * for `grpc.Server#addService`, a typed client factory, and the message-size
 * limits both sides use so that ~1 MiB upload/download chunks pass.
 */
import { type DescMessage, fromBinary, type Message, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import { serviceError } from "./error-details.ts";
import { ErrorReason } from "./gen/tributary/v1/errors_pb.ts";

/** Size of the payload chunks of `SubmitUpdate` and `FetchAdapter` (1 MiB). */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * Largest gRPC message either side sends or accepts (8 MiB): a 1 MiB chunk plus
 * headers with room to spare, well below anything that would let one message
 * exhaust memory.
 */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/**
 * Channel options applying {@link MAX_MESSAGE_BYTES} in both directions. Valid
 * for clients (`makeClient` applies them) and servers.
 *
 * @example
 * const server = new grpc.Server({ ...GRPC_CHANNEL_OPTIONS });
 */
export const GRPC_CHANNEL_OPTIONS: Readonly<grpc.ChannelOptions> = Object.freeze({
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
});

type MethodShape = GenServiceMethods[string];
/** Any generated protobuf-es v2 service descriptor, e.g. `ClientService`. */
export type AnyService = GenService<GenServiceMethods>;
type Methods<Svc extends AnyService> = Svc["method"];
type In<M extends MethodShape> = MessageShape<M["input"]>;
type Out<M extends MethodShape> = MessageShape<M["output"]>;

/** The grpc-js `ServiceDefinition` of a protobuf-es service, keyed by the methods' local (camelCase) names. */
export type GrpcServiceDefinition<Svc extends AnyService> = {
  readonly [K in keyof Methods<Svc>]: grpc.MethodDefinition<In<Methods<Svc>[K]>, Out<Methods<Svc>[K]>>;
};

/** The grpc-js server handler of one method, chosen by its streaming kind. */
export type GrpcHandler<M extends MethodShape> = M["methodKind"] extends "unary"
  ? grpc.handleUnaryCall<In<M>, Out<M>>
  : M["methodKind"] extends "server_streaming"
    ? grpc.handleServerStreamingCall<In<M>, Out<M>>
    : M["methodKind"] extends "client_streaming"
      ? grpc.handleClientStreamingCall<In<M>, Out<M>>
      : grpc.handleBidiStreamingCall<In<M>, Out<M>>;

/**
 * Server handlers for every method of a service, keyed like {@link GrpcServiceDefinition}.
 *
 * @example
 * const handlers: GrpcServiceImplementation<typeof ClientService> = { join(call, callback) { ... }, ... };
 */
export type GrpcServiceImplementation<Svc extends AnyService> = {
  [K in keyof Methods<Svc>]: GrpcHandler<Methods<Svc>[K]>;
};

/** Callback of a unary or client-streaming call. */
export type GrpcCallback<O> = (error: grpc.ServiceError | null, response?: O) => void;

/** The grpc-js client method of one service method, chosen by its streaming kind. */
export type GrpcClientMethod<M extends MethodShape> = M["methodKind"] extends "unary"
  ? {
      (request: In<M>, callback: GrpcCallback<Out<M>>): grpc.ClientUnaryCall;
      (request: In<M>, metadata: grpc.Metadata, callback: GrpcCallback<Out<M>>): grpc.ClientUnaryCall;
      (
        request: In<M>,
        metadata: grpc.Metadata,
        options: Partial<grpc.CallOptions>,
        callback: GrpcCallback<Out<M>>,
      ): grpc.ClientUnaryCall;
    }
  : M["methodKind"] extends "server_streaming"
    ? (
        request: In<M>,
        metadata?: grpc.Metadata,
        options?: Partial<grpc.CallOptions>,
      ) => grpc.ClientReadableStream<Out<M>>
    : M["methodKind"] extends "client_streaming"
      ? {
          (callback: GrpcCallback<Out<M>>): grpc.ClientWritableStream<In<M>>;
          (metadata: grpc.Metadata, callback: GrpcCallback<Out<M>>): grpc.ClientWritableStream<In<M>>;
          (
            metadata: grpc.Metadata,
            options: Partial<grpc.CallOptions>,
            callback: GrpcCallback<Out<M>>,
          ): grpc.ClientWritableStream<In<M>>;
        }
      : (
          metadata?: grpc.Metadata,
          options?: Partial<grpc.CallOptions>,
        ) => grpc.ClientDuplexStream<In<M>, Out<M>>;

/** A grpc-js client with one method per service method (local camelCase names), e.g. `GrpcClient<typeof ClientService>`. */
export type GrpcClient<Svc extends AnyService> = grpc.Client & {
  readonly [K in keyof Methods<Svc>]: GrpcClientMethod<Methods<Svc>[K]>;
};

/**
 * Builds the grpc-js `ServiceDefinition` of a protobuf-es v2 service: path
 * `/<package.Service>/<Method>`, streaming flags from the method kind, and
 * protobuf binary (de)serialization with `toBinary` / `fromBinary`.
 *
 * @example
 * const server = new grpc.Server({ ...GRPC_SERVER_OPTIONS });
 * server.addService(createServiceDefinition(ClientService), handlers);
 */
export function createServiceDefinition<Svc extends AnyService>(service: Svc): GrpcServiceDefinition<Svc> {
  const definition: Record<string, grpc.MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input),
      requestDeserialize: lenientDeserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
  }
  // One entry per method of `service`, keyed by local name like `service.method`.
  return definition as unknown as GrpcServiceDefinition<Svc>;
}

/**
 * Registers typed handlers for every method of `service` on a grpc-js server.
 *
 * @example
 * addService(server, ClientService, { join: (call, callback) => callback(null, create(JoinResponseSchema)), ... });
 */
export function addService<Svc extends AnyService>(
  server: grpc.Server,
  service: Svc,
  implementation: GrpcServiceImplementation<Svc>,
): void {
  server.addService(createServiceDefinition(service), implementation);
}

/**
 * Creates a grpc-js client for a protobuf-es v2 service whose methods are the
 * service's methods (camelCase), with {@link GRPC_CHANNEL_OPTIONS} applied
 * unless `options` overrides them. Close it with `client.close()`.
 *
 * @example
 * const client = makeClient(ClientService, "127.0.0.1:7443", grpc.credentials.createInsecure());
 * client.join(create(JoinRequestSchema, { federationId: "demo" }), (err, res) => { ... });
 */
export function makeClient<Svc extends AnyService>(
  service: Svc,
  address: string,
  credentials: grpc.ChannelCredentials,
  options: Partial<grpc.ChannelOptions> = {},
): GrpcClient<Svc> {
  const Client = grpc.makeGenericClientConstructor(createServiceDefinition(service), service.typeName);
  return new Client(address, credentials, {
    ...GRPC_CHANNEL_OPTIONS,
    ...options,
  }) as unknown as GrpcClient<Svc>;
}

function serializer<D extends DescMessage>(schema: D): (message: MessageShape<D>) => Buffer {
  return (message) => {
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<D extends DescMessage>(schema: D): (bytes: Buffer) => MessageShape<D> {
  return (bytes) => fromBinary(schema, bytes);
}

const MALFORMED = Symbol.for("tributary.malformedRequest");

/** What the server-side deserializer hands on for bytes that are not a valid message. */
interface MalformedRequest {
  readonly [MALFORMED]: true;
  readonly typeName: string;
  readonly error: string;
}

function isMalformed(message: unknown): message is MalformedRequest {
  return typeof message === "object" && message !== null && MALFORMED in message;
}

/**
 * The server side's request deserializer: a request that does not decode is
 * passed on as a marker instead of thrown (grpc-js would answer INTERNAL), so
 * that {@link rejectMalformedRequests} answers INVALID_ARGUMENT.
 */
function lenientDeserializer<D extends DescMessage>(schema: D): (bytes: Buffer) => MessageShape<D> {
  return (bytes) => {
    try {
      return fromBinary(schema, bytes);
    } catch (err) {
      const marker: MalformedRequest = {
        [MALFORMED]: true,
        typeName: schema.typeName,
        error: err instanceof Error ? err.message : String(err),
      };
      // Only rejectMalformedRequests ever sees the marker; it never reaches a handler.
      return marker as unknown as MessageShape<D>;
    }
  };
}

/**
 * Server interceptor answering a request message that is not valid protobuf
 * with INVALID_ARGUMENT (reason `MALFORMED_MESSAGE`, metadata `message`: the
 * expected type) before it reaches the handler. Part of
 * {@link GRPC_SERVER_OPTIONS}; every server of services built by
 * {@link createServiceDefinition} must install it.
 *
 * @example
 * const server = new grpc.Server({ ...GRPC_SERVER_OPTIONS });
 */
export const rejectMalformedRequests: grpc.ServerInterceptor = (_method, call) =>
  new grpc.ServerInterceptingCall(call, {
    start(next) {
      next(
        new grpc.ServerListenerBuilder()
          .withOnReceiveMessage((message, nextMessage) => {
            if (!isMalformed(message)) return nextMessage(message);
            const err = serviceError({
              code: grpc.status.INVALID_ARGUMENT,
              message: `request is not a valid ${message.typeName} message: ${message.error}`,
              reason: ErrorReason.MALFORMED_MESSAGE,
              metadata: { message: message.typeName },
            });
            call.sendStatus({ code: err.code, details: err.details, metadata: err.metadata });
          })
          .build(),
      );
    },
  });

/**
 * Options of a grpc-js server for Tributary's services: {@link GRPC_CHANNEL_OPTIONS}
 * plus the {@link rejectMalformedRequests} interceptor.
 *
 * @example
 * const server = new grpc.Server({ ...GRPC_SERVER_OPTIONS });
 */
export const GRPC_SERVER_OPTIONS: Readonly<grpc.ServerOptions> = Object.freeze({
  ...GRPC_CHANNEL_OPTIONS,
  // A connection with no call for 10 minutes is closed (clients reconnect on
  // their next call), and pings check that idle peers are still there.
  "grpc.max_connection_idle_ms": 10 * 60 * 1000,
  "grpc.keepalive_time_ms": 2 * 60 * 1000,
  "grpc.keepalive_timeout_ms": 20 * 1000,
  interceptors: [rejectMalformedRequests],
});

/** Names of a service's unary methods. */
export type UnaryMethodName<Svc extends AnyService> = {
  [K in keyof Methods<Svc>]: Methods<Svc>[K]["methodKind"] extends "unary" ? K : never;
}[keyof Methods<Svc>];

/**
 * Calls a unary method and resolves with its response (rejects with the
 * grpc-js `ServiceError`).
 *
 * @example
 * const res = await callUnary(operator, "enrollClient", create(EnrollClientRequestSchema, { federationId, clientId }), md);
 */
export function callUnary<Svc extends AnyService, K extends UnaryMethodName<Svc>>(
  client: GrpcClient<Svc>,
  method: K,
  request: In<Methods<Svc>[K]>,
  metadata: grpc.Metadata = new grpc.Metadata(),
  options: Partial<grpc.CallOptions> = {},
): Promise<Out<Methods<Svc>[K]>> {
  type Raw = (
    req: unknown,
    md: grpc.Metadata,
    opts: Partial<grpc.CallOptions>,
    cb: (err: grpc.ServiceError | null, res?: unknown) => void,
  ) => grpc.ClientUnaryCall;
  const fn = (client as unknown as Record<string, Raw>)[method as string];
  return new Promise((resolve, reject) => {
    fn.call(client, request, metadata, options, (err, res) =>
      err ? reject(err) : resolve(res as Out<Methods<Svc>[K]>),
    );
  });
}

/**
 * A gRPC error's details as a person should read them: grpc-js ends a
 * connection failure with `Resolution note: ` and nothing after it when the
 * resolver had nothing to say; that empty note is dropped.
 *
 * @example
 * readableDetails("No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7070. Resolution note: ");
 * // "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7070."
 */
export function readableDetails(details: string): string {
  return details.replace(/\s*Resolution note:\s*$/, "");
}
