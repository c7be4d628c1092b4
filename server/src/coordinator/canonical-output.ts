/**
 * The merged adapter's form comes from the federation, never from a client:
 * tensor names, layout and shapes from the schema's modules (the canonical
 * PEFT form `base_model.model.<module>.lora_A.weight` `[r, dIn]` /
 * `lora_B.weight` `[dOut, r]`), and an `adapter_config.json` written from the
 * schema's base model — so no client can put its own tensor names, layout or
 * config fields (`target_modules`, `layers_to_transform`, `modules_to_save`,
 * extras) into what every node receives.
 */
import { PEFT_PREFIX } from "@tributary/protocol";
import type { Federation } from "../core/model.ts";
import { adapterConfigFromObject, CONFIG_FILE, type LoraLayout, type TensorDType } from "../peft/index.ts";
import type { LayoutSource } from "../pipeline/merged-output.ts";

/**
 * The config every merged adapter of `federation` is written from: LoRA over
 * the schema's modules of its base model. `r` and `rank_pattern` are then set
 * from the merged ranks, and each module's scaling is folded into its `lora_B`
 * when it is written, so `lora_alpha` only sets the scaling that clients
 * continuing from the merged adapter train at: `scaling` (the median of the
 * merged clients' scalings, a statistic no single client controls) × `r`.
 */
export function canonicalConfig(federation: Federation, scaling = 1): Record<string, unknown> {
  const rank = typeof federation.merge.rank === "number" ? federation.merge.rank : 8;
  const targets = [
    ...new Set(federation.schema.modules.map((m) => m.name.slice(m.name.lastIndexOf(".") + 1))),
  ].sort();
  return {
    peft_type: "LORA",
    base_model_name_or_path: federation.schema.baseModel,
    r: rank,
    lora_alpha: scaling * rank,
    lora_dropout: 0,
    bias: "none",
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    target_modules: targets,
    modules_to_save: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
}

/** The layout source (config template and module layouts) of `federation`'s merged adapters, at `scaling`. */
export function canonicalLayout(federation: Federation, scaling = 1): LayoutSource {
  const modules = new Map<string, { readonly layout: LoraLayout }>();
  for (const m of federation.schema.modules) {
    modules.set(m.name, {
      layout: { kind: "linear", aShape: [m.dIn], bShape: [m.dOut], prefix: PEFT_PREFIX, adapterName: "" },
    });
  }
  return {
    config: adapterConfigFromObject(canonicalConfig(federation, scaling), CONFIG_FILE),
    modules,
    scaling,
  };
}

/** The dtype merged adapters are stored in: F32 when the schema allows it, else its first dtype. */
export function canonicalDtype(federation: Federation): TensorDType {
  const dtypes = federation.schema.dtypes;
  return dtypes.includes("F32") || dtypes.length === 0 ? "F32" : dtypes[0];
}
