/**
 * `tributary adapters synth`: writes seeded synthetic PEFT adapters that fit
 * a federation's schema (its base model, modules and shapes, an allowed
 * dtype), one directory per client, for trying a federation before any
 * node has trained: `tributary-client submit` or either SDK takes them as
 * they are.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { type CreateFederationRequest, Dtype, isTensorDType, type TensorDType } from "@tributary/protocol";
import { writeSyntheticAdapter } from "../peft/synthetic-adapter.ts";
import { integerOption, numberOption, parseFlags, UsageError } from "./args.ts";
import { readFederationFile } from "./federation-file.ts";
import type { CliIo } from "./io.ts";
import { CommandError } from "./system-errors.ts";

/** Help text of `tributary adapters`. */
export const ADAPTERS_USAGE = `Usage: tributary adapters synth --schema FED.json --out DIR [options]

Writes synthetic PEFT LoRA adapters (adapter_config.json +
adapter_model.safetensors) that fit a federation: DIR/client-1 … DIR/client-N,
each with the schema's base model and modules at their shapes, seeded so the
same options write the same bytes. Submit them to try a federation before
any node has trained (tributary-client submit --samples 100 DIR/client-1).

Options:
  --schema FILE    the federation, as for tributary admin create-federation
                   --file (a CreateFederationRequest in protobuf JSON)
  --out DIR        where to write the client directories (created; an existing
                   client directory is refused)
  --clients N      how many adapters (default 3)
  --rank R         LoRA rank of every module (default: each module's max_rank
                   from the schema; at most that)
  --dtype D        F32, F16 or BF16 (default: the schema's first allowed dtype)
  --seed S         seed of client 1; client i uses S + i - 1 (default 1)
  --scale X        standard deviation of the lora_B entries (default 0.01)`;

/** The parts of a federation definition an adapter must fit. */
function schemaOf(req: CreateFederationRequest) {
  const names: Partial<Record<Dtype, TensorDType>> = {
    [Dtype.F32]: "F32",
    [Dtype.F16]: "F16",
    [Dtype.BF16]: "BF16",
  };
  const allowed = (req.schema?.allowedDtypes ?? []).flatMap((d) => names[d] ?? []);
  return {
    id: req.federationId,
    schema: {
      baseModel: req.schema?.baseModelId ?? "",
      modules: req.schema?.modules ?? [],
      // Empty = any of F32, F16, BF16, as federation.proto documents.
      dtypes: allowed.length === 0 ? (["F32", "F16", "BF16"] as TensorDType[]) : allowed,
    },
  };
}

/** Runs `tributary adapters`; returns the exit code. */
export async function runAdapters(argv: readonly string[], io: CliIo): Promise<number> {
  const [action, ...rest] = argv;
  if (action === undefined || action === "--help" || action === "-h" || action === "help") {
    io.out(ADAPTERS_USAGE);
    return 0;
  }
  if (action !== "synth") throw new UsageError(`unknown adapters action "${action}" (expected synth)`);
  const flags = parseFlags(rest, ["schema", "out", "clients", "rank", "dtype", "seed", "scale"]);
  if (flags.help) {
    io.out(ADAPTERS_USAGE);
    return 0;
  }
  const need = (flag: string): string => {
    const v = flags.value(flag);
    if (v === undefined || v === "") throw new UsageError(`adapters synth needs --${flag}`);
    return v;
  };
  const schemaFile = need("schema");
  const out = need("out");
  const clients = integerOption("clients", flags.value("clients")) ?? 3;
  if (clients < 1 || clients > 1000) throw new UsageError(`--clients must be 1 to 1000, got ${clients}`);
  const rank = integerOption("rank", flags.value("rank"));
  if (rank !== undefined && rank < 1) throw new UsageError(`--rank must be at least 1, got ${rank}`);
  const seed = integerOption("seed", flags.value("seed")) ?? 1;
  const scale = numberOption("scale", flags.value("scale")) ?? 0.01;
  if (!(scale > 0)) throw new UsageError(`--scale must be above 0, got ${scale}`);
  const dtypeFlag = flags.value("dtype")?.toUpperCase();
  if (dtypeFlag !== undefined && !isTensorDType(dtypeFlag))
    throw new UsageError(`--dtype must be F32, F16 or BF16, got "${flags.value("dtype")}"`);

  const federation = schemaOf(await readFederationFile(schemaFile, "--schema"));
  const { schema } = federation;
  if (schema.modules.length === 0)
    throw new CommandError(`--schema ${schemaFile}: the schema lists no modules`);
  const dtype: TensorDType = dtypeFlag ?? schema.dtypes[0] ?? "F32";
  if (!schema.dtypes.includes(dtype)) {
    throw new CommandError(
      `--dtype ${dtype}: federation "${federation.id}" accepts ${schema.dtypes.join(", ")}`,
    );
  }
  const smallest = Math.min(...schema.modules.map((m) => m.maxRank));
  if (rank !== undefined && rank > smallest) {
    throw new CommandError(
      `--rank ${rank}: above the schema's smallest max_rank (${smallest}); the coordinator would refuse these adapters`,
    );
  }
  const dirs = Array.from({ length: clients }, (_, i) => join(out, `client-${i + 1}`));
  for (const dir of dirs) {
    if ((await stat(dir).catch(() => undefined)) !== undefined) {
      throw new CommandError(`${dir} already exists; choose another --out or remove it`);
    }
  }
  const modules = schema.modules.map((m) => ({ name: m.name, dIn: m.dIn, dOut: m.dOut }));
  for (const [i, dir] of dirs.entries()) {
    await writeSyntheticAdapter(dir, {
      modules,
      rank: rank ?? smallest,
      seed: seed + i,
      dtype,
      baseModel: schema.baseModel,
      bScale: scale,
    });
    io.out(dir);
  }
  io.err(
    `wrote ${clients} adapter(s) for federation "${federation.id}" (${modules.length} modules, rank ${rank ?? smallest}, ${dtype})`,
  );
  return 0;
}
