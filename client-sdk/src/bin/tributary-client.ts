#!/usr/bin/env node
/**
 * The `tributary-client` command: a training node's side of a federation from
 * a shell script or a Python/PEFT trainer (see `tributary-client --help`).
 * Only the help text is loaded for `--help`; the gRPC and NATS clients load
 * with the first action that needs them.
 */
import { runClientCli } from "../cli.ts";

process.exitCode = await runClientCli(process.argv.slice(2));
