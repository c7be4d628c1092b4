/**
 * A federation definition file as the CLI reads it: a
 * `CreateFederationRequest` in protobuf JSON (`admin create-federation
 * --file`, `adapters synth --schema`); a bad file is one line naming the
 * flag, the path and what is wrong.
 */
import { readFile } from "node:fs/promises";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { type CreateFederationRequest, CreateFederationRequestSchema } from "@tributary/protocol";
import { CommandError, systemErrorText } from "./system-errors.ts";

/**
 * Reads `path` (given as `flag`) as a `CreateFederationRequest`.
 *
 * @example
 * const req = await readFederationFile("federation.json", "--file");
 */
export async function readFederationFile(path: string, flag: string): Promise<CreateFederationRequest> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new CommandError(`${flag} ${systemErrorText(err) ?? String(err)}`);
  }
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new CommandError(`${flag} ${path}: not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  try {
    return fromJson(CreateFederationRequestSchema, json);
  } catch (err) {
    throw new CommandError(
      `${flag} ${path}: not a CreateFederationRequest in protobuf JSON (${err instanceof Error ? err.message : String(err)}); its fields are in proto/tributary/v1/operator.proto`,
    );
  }
}
