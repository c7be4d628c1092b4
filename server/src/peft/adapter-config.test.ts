import assert from "node:assert/strict";
import { test } from "node:test";
import { AdapterFormatError } from "@tributary/protocol";
import { alphaFor, parseAdapterConfig, rankFor, scalingFor } from "./adapter-config.ts";

const FILE = "client-3/adapter_config.json";
const parse = (obj: unknown) => parseAdapterConfig(typeof obj === "string" ? obj : JSON.stringify(obj), FILE);

function rejects(obj: unknown, pattern: RegExp): void {
  assert.throws(
    () => parse(obj),
    (err: unknown) => {
      assert.ok(err instanceof AdapterFormatError, String(err));
      assert.equal(err.file, FILE);
      assert.ok(err.message.startsWith(`${FILE}: `), err.message);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

test("PEFT defaults: r = 8, lora_alpha = 8, no rsLoRA, empty patterns", () => {
  const c = parse({});
  assert.equal(c.r, 8);
  assert.equal(c.loraAlpha, 8);
  assert.equal(c.useRslora, false);
  assert.deepEqual(c.rankPattern, {});
  assert.equal(c.baseModel, undefined);
  assert.equal(scalingFor(c, "model.layers.0.self_attn.q_proj", 8), 1);
});

test("fields are read and the raw object keeps every field", () => {
  const raw = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r: 16,
    lora_alpha: 32,
    use_rslora: false,
    base_model_name_or_path: "meta-llama/Llama-3.2-1B",
    target_modules: ["q_proj", "v_proj"],
    modules_to_save: ["lm_head"],
    lora_dropout: 0.05,
    rank_pattern: null,
  };
  const c = parse(raw);
  assert.equal(c.r, 16);
  assert.equal(c.loraAlpha, 32);
  assert.equal(c.baseModel, "meta-llama/Llama-3.2-1B");
  assert.deepEqual(c.targetModules, ["q_proj", "v_proj"]);
  assert.deepEqual(c.modulesToSave, ["lm_head"]);
  assert.deepEqual(c.raw, raw);
  assert.deepEqual(c.rankPattern, {});
});

test("rank_pattern keys match a module name or a dotted suffix of it, not a substring", () => {
  const c = parse({ r: 8, rank_pattern: { q_proj: 4 } });
  assert.equal(rankFor(c, "model.layers.0.self_attn.q_proj"), 4);
  assert.equal(rankFor(c, "q_proj"), 4);
  assert.equal(rankFor(c, "model.layers.0.self_attn.xq_proj"), 8);
  assert.equal(rankFor(c, "model.layers.0.self_attn.q_proj.base"), 8);
  assert.equal(rankFor(c, "model.layers.0.self_attn.v_proj"), 8);
});

test("the first matching pattern key wins, full dotted names match themselves, dotted suffixes match", () => {
  const c = parse({
    r: 8,
    rank_pattern: { "model.layers.0.self_attn.q_proj": 2, q_proj: 4, "mlp.up_proj": 6 },
  });
  assert.equal(rankFor(c, "model.layers.0.self_attn.q_proj"), 2);
  assert.equal(rankFor(c, "model.layers.1.self_attn.q_proj"), 4);
  assert.equal(rankFor(c, "model.layers.2.mlp.up_proj"), 6);
  assert.equal(rankFor(c, "model.layers.3.mlp.down_proj"), 8);
  const reversed = parse({ r: 8, rank_pattern: { q_proj: 4, "model.layers.0.self_attn.q_proj": 2 } });
  assert.equal(rankFor(reversed, "model.layers.0.self_attn.q_proj"), 4);
});

test("alpha_pattern and scaling: alpha / r, or alpha / √r with rsLoRA", () => {
  const c = parse({ r: 4, lora_alpha: 16, alpha_pattern: { v_proj: 2 } });
  assert.equal(alphaFor(c, "model.layers.0.self_attn.q_proj"), 16);
  assert.equal(alphaFor(c, "model.layers.0.self_attn.v_proj"), 2);
  assert.equal(scalingFor(c, "model.layers.0.self_attn.q_proj", 4), 4);
  assert.equal(scalingFor(c, "model.layers.0.self_attn.v_proj", 4), 0.5);
  const rs = parse({ r: 4, lora_alpha: 16, use_rslora: true, alpha_pattern: { v_proj: 2 } });
  assert.equal(scalingFor(rs, "model.layers.0.self_attn.q_proj", 4), 8);
  assert.equal(scalingFor(rs, "model.layers.0.self_attn.q_proj", 16), 4);
  assert.equal(scalingFor(rs, "model.layers.0.self_attn.v_proj", 4), 1);
});

test("rejects malformed configs, naming the file and the field", () => {
  rejects("{", /not valid JSON/);
  rejects([1], /expected a JSON object/);
  rejects({ peft_type: "PREFIX_TUNING" }, /"peft_type" is "PREFIX_TUNING", expected "LORA"/);
  rejects({ r: 0 }, /"r" is 0, expected a positive integer/);
  rejects({ r: 2.5 }, /"r" is 2.5, expected a positive integer/);
  rejects({ r: "8" }, /"r" is "8", expected a positive integer/);
  rejects({ lora_alpha: -1 }, /"lora_alpha" is -1, expected a positive number/);
  rejects({ lora_alpha: "16" }, /"lora_alpha" is "16", expected a positive number/);
  rejects({ use_rslora: "yes" }, /"use_rslora" is "yes", expected true or false/);
  rejects({ rank_pattern: { q_proj: 0 } }, /"rank_pattern" entry "q_proj" is 0, expected a positive number/);
  rejects({ rank_pattern: { q_proj: 2.5 } }, /"rank_pattern" entry "q_proj" is 2.5/);
  rejects({ rank_pattern: ["q_proj"] }, /"rank_pattern" is \["q_proj"\], expected an object/);
  rejects({ alpha_pattern: { v_proj: "x" } }, /"alpha_pattern" entry "v_proj" is "x"/);
  rejects(
    { rank_pattern: { "q_proj(": 4 } },
    /"rank_pattern" key "q_proj\(" is not a module name .*regular-expression syntax is not accepted/,
  );
  rejects({ base_model_name_or_path: 3 }, /"base_model_name_or_path" is 3, expected a string/);
  rejects({ target_modules: 3 }, /"target_modules" is 3, expected a string or a list of strings/);
  rejects({ modules_to_save: "lm_head" }, /"modules_to_save" is "lm_head", expected a list of strings/);
});

test("DoRA adapters are rejected with the reason", () => {
  rejects(
    { use_dora: true },
    /DoRA adapters are not supported: their magnitude vectors cannot be merged as task vectors/,
  );
  assert.equal(parse({ use_dora: false }).r, 8);
});

test("pattern keys are never run as regular expressions: a backtracking key is refused, key count bounded", () => {
  rejects({ rank_pattern: { "(.*){8}!": 4 } }, /is not a module name/);
  rejects({ alpha_pattern: { "q_proj|v_proj": 4 } }, /is not a module name/);
  const keys = Object.fromEntries(Array.from({ length: 4097 }, (_, i) => [`m${i}`, 4]));
  rejects({ rank_pattern: keys }, /"rank_pattern" has 4097 keys, at most 4096/);
  // A literal key with regex-like dots matches only literally.
  assert.equal(rankFor(parse({ r: 8, rank_pattern: { "layers.1.q_proj": 4 } }), "model.layersX1.q_proj"), 8);
});

test("JSON nested deeper than 32 levels is refused before anything walks it", () => {
  const deep = `{"r": 8, "x": ${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
  assert.throws(() => parseAdapterConfig(deep, "adapter_config.json"), {
    name: "AdapterFormatError",
    message: /adapter_config\.json: JSON is nested deeper than 32 levels/,
  });
});
