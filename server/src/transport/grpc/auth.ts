/**
 * Bearer-token identity at the RPC edge. Clients present the per-client
 * token issued at enrollment, operators a separate operator token, both as
 * `authorization: Bearer <token>` metadata. Only sha256 digests of tokens are
 * stored or compared (in constant time); tokens are never logged.
 */

import type { PeerCertificate } from "node:tls";
import type { Metadata } from "@grpc/grpc-js";
import { ErrorReason, idProblem } from "@tributary/protocol";
import { InvalidRequestError, NotEnrolledError } from "../../coordinator/errors.ts";
import { DomainError, type ErrorDetail } from "../../core/errors.ts";
import { tokenDigest, tokenMatches } from "../../core/tokens.ts";

/** No or malformed credentials. → `UNAUTHENTICATED`. */
export class UnauthenticatedError extends DomainError {
  override readonly name = "UnauthenticatedError";
  readonly code = "unauthenticated";
  detail(): ErrorDetail {
    return { reason: ErrorReason.UNAUTHENTICATED };
  }
}

/** Valid credentials that do not allow the call. → `PERMISSION_DENIED`. */
export class PermissionDeniedError extends DomainError {
  override readonly name = "PermissionDeniedError";
  readonly code = "permission-denied";
  detail(): ErrorDetail {
    return { reason: ErrorReason.PERMISSION_DENIED };
  }
}

/**
 * The bearer token of a call, or `UnauthenticatedError`; `kind` names the
 * token a malformed value was meant to be ("invalid operator token (…)").
 */
export function bearerToken(metadata: Metadata, kind: "client" | "operator" = "client"): string {
  const values = metadata.get("authorization");
  if (values.length === 0) {
    throw new UnauthenticatedError('missing "authorization: Bearer <token>" metadata');
  }
  if (values.length > 1) throw new UnauthenticatedError('more than one "authorization" metadata value');
  const match = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(String(values[0]));
  if (match === null) {
    throw new UnauthenticatedError(
      `invalid ${kind} token (the "authorization" metadata must be "Bearer <token>", a token of 16 to 512 characters)`,
    );
  }
  return match[1];
}

/** Looks up enrolled clients by token digest. */
export interface ClientDirectory {
  /** The enrolled identities of the token with this digest (one client id, possibly in several federations). */
  byTokenDigest(digestHex: string): { clientId: string; federations: ReadonlySet<string> } | undefined;
  /** The federations client `clientId` is enrolled in (for clients identified by a certificate). */
  byClientId(clientId: string): { clientId: string; federations: ReadonlySet<string> } | undefined;
}

/** Who a client call is from. */
export interface ClientIdentity {
  readonly clientId: string;
  readonly federations: ReadonlySet<string>;
}

/**
 * Authenticates a client call; `UnauthenticatedError` for a missing or
 * unknown token.
 */
export function authenticateClient(
  metadata: Metadata,
  directory: ClientDirectory,
  certificateClientId?: string,
): ClientIdentity {
  if (certificateClientId !== undefined) {
    // mTLS: the verified client certificate names the client; a token, if sent too, must agree.
    if (metadata.get("authorization").length === 0) {
      const enrolled = directory.byClientId(certificateClientId);
      if (enrolled === undefined) {
        throw new UnauthenticatedError(
          `the client certificate names "${certificateClientId}", which is not enrolled`,
        );
      }
      return enrolled;
    }
    const found = directory.byTokenDigest(tokenDigest(bearerToken(metadata)));
    if (found === undefined) throw new UnauthenticatedError("unknown client token");
    if (found.clientId !== certificateClientId) {
      throw new PermissionDeniedError(
        `the client certificate names "${certificateClientId}" but the token belongs to client "${found.clientId}"`,
      );
    }
    return found;
  }
  const found = directory.byTokenDigest(tokenDigest(bearerToken(metadata)));
  if (found === undefined) throw new UnauthenticatedError("unknown client token");
  return found;
}

/**
 * The client id a verified client certificate names — its subject CN — when
 * the call came over mutual TLS, else `undefined`.
 *
 * @example
 * const certId = certificateClientId(call); // "hospital-3"
 */
export function certificateClientId(call: {
  getAuthContext?: () => { sslPeerCertificate?: PeerCertificate } | null;
}): string | undefined {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  const cn = cert?.subject?.CN;
  return typeof cn === "string" && cn !== "" ? cn : undefined;
}

/**
 * Checks that `identity` may act as `clientId` in `federationId`:
 * `PermissionDeniedError` for another client's id, `NotEnrolledError` for a
 * federation the client is not enrolled in.
 */
export function authorizeClient(identity: ClientIdentity, federationId: string, clientId?: string): void {
  const badFederation = idProblem("federation_id", federationId);
  if (badFederation !== undefined) throw new InvalidRequestError("federation_id", badFederation);
  const badClient = clientId === undefined || clientId === "" ? undefined : idProblem("client_id", clientId);
  if (badClient !== undefined) throw new InvalidRequestError("client_id", badClient);
  if (clientId !== undefined && clientId !== "" && clientId !== identity.clientId) {
    throw new PermissionDeniedError(
      `this token belongs to client "${identity.clientId}", not "${clientId}"; a client can only act as itself`,
    );
  }
  if (!identity.federations.has(federationId)) throw new NotEnrolledError(federationId, identity.clientId);
}

/** Authenticates an operator call against the operator token's digest. */
export function authenticateOperator(metadata: Metadata, operatorDigest: string): void {
  const token = bearerToken(metadata, "operator");
  if (!tokenMatches(token, operatorDigest)) throw new UnauthenticatedError("invalid operator token");
}
