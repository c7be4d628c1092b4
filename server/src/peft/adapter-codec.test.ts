import assert from "node:assert/strict";
import { test } from "node:test";
import type { TensorDType } from "@tributary/protocol";
import { AdapterFormatError } from "@tributary/protocol";
import type { AdapterInput } from "../pipeline/merge-adapters.ts";
import { decodeAdapter, encodeAdapter } from "./adapter-codec.ts";
import { parseAdapterConfig } from "./adapter-config.ts";
import type { LoraLayout, OutputModule } from "./adapter-types.ts";
import { parseSafetensors, type SafetensorsEntry, serializeSafetensors } from "./safetensors.ts";
import { denseProduct, randomArray, rawSafetensors, relativeError } from "./testing/fixtures.ts";

const LABEL = "clients/7";
const WEIGHTS = `${LABEL}/adapter_model.safetensors`;
const P = "base_model.model.";

/** `n` values exactly representable in BF16 (multiples of 1/8 in [-2, 2)). */
function bf16Exact(n: number, seed: number): Float32Array {
  return Float32Array.from(randomArray(n, seed), (v) => Math.round(v * 16) / 8);
}

const CONFIG = JSON.stringify({
  peft_type: "LORA",
  task_type: "CAUSAL_LM",
  base_model_name_or_path: "tiny/base",
  r: 4,
  lora_alpha: 8,
  rank_pattern: { v_proj: 2 },
  target_modules: ["q_proj", "v_proj", "embed_tokens", "conv"],
  modules_to_save: ["score"],
});

/** A PEFT-style adapter: BF16, one `.default.` adapter name, an embedding, a conv and a dense tensor. */
function peftTensors(): SafetensorsEntry[] {
  const t = (name: string, shape: number[], seed: number): SafetensorsEntry => ({
    name,
    dtype: "BF16",
    shape,
    data: bf16Exact(
      shape.reduce((x, y) => x * y, 1),
      seed,
    ),
  });
  return [
    t(`${P}model.layers.10.self_attn.q_proj.lora_A.default.weight`, [4, 6], 1),
    t(`${P}model.layers.10.self_attn.q_proj.lora_B.default.weight`, [5, 4], 2),
    t(`${P}model.layers.2.self_attn.v_proj.lora_A.weight`, [2, 6], 3),
    t(`${P}model.layers.2.self_attn.v_proj.lora_B.weight`, [3, 2], 4),
    t(`${P}model.embed_tokens.lora_embedding_A`, [4, 10], 5),
    t(`${P}model.embed_tokens.lora_embedding_B`, [6, 4], 6),
    t(`${P}model.conv.lora_A.weight`, [4, 3, 2, 2], 7),
    t(`${P}model.conv.lora_B.weight`, [7, 4, 1, 1], 8),
    t(`${P}score.weight`, [2, 6], 9),
  ];
}

function decodeEntries(entries: SafetensorsEntry[], config = CONFIG) {
  return decodeAdapter(config, serializeSafetensors(entries, { format: "pt" }), LABEL);
}

function rejects(fn: () => unknown, pattern: RegExp, tensor?: string, file = WEIGHTS): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AdapterFormatError, String(err));
    assert.equal(err.file, file);
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    assert.match(err.message, pattern);
    if (tensor !== undefined) assert.equal(err.tensor, tensor);
    return true;
  });
}

test("decodes a PEFT-style BF16 adapter: adapter names, embedding, conv, dense tensors", () => {
  const entries = peftTensors();
  const byName = new Map(entries.map((e) => [e.name, e.data]));
  const adapter = decodeEntries(entries);
  const input: AdapterInput = adapter; // a decoded adapter is a pipeline input as is
  assert.equal(input.label, LABEL);
  assert.equal(adapter.baseModel, "tiny/base");
  assert.equal(adapter.dtype, "BF16");
  assert.deepEqual(adapter.metadata, { format: "pt" });
  assert.deepEqual(
    [...adapter.modules.keys()],
    [
      "model.conv",
      "model.embed_tokens",
      "model.layers.2.self_attn.v_proj",
      "model.layers.10.self_attn.q_proj",
    ],
  );
  const q = adapter.modules.get("model.layers.10.self_attn.q_proj")!;
  assert.deepEqual([q.rank, q.dIn, q.dOut, q.scaling], [4, 6, 5, 2]);
  assert.deepEqual([...q.a], [...byName.get(`${P}model.layers.10.self_attn.q_proj.lora_A.default.weight`)!]);
  assert.deepEqual([...q.b], [...byName.get(`${P}model.layers.10.self_attn.q_proj.lora_B.default.weight`)!]);
  assert.deepEqual(q.layout, { kind: "linear", aShape: [6], bShape: [5], prefix: P, adapterName: "default" });
  const v = adapter.modules.get("model.layers.2.self_attn.v_proj")!;
  assert.deepEqual([v.rank, v.dIn, v.dOut, v.scaling], [2, 6, 3, 4]);
  assert.equal(v.layout.adapterName, "");
  const emb = adapter.modules.get("model.embed_tokens")!;
  assert.deepEqual([emb.rank, emb.dIn, emb.dOut, emb.scaling], [4, 10, 6, 2]);
  assert.equal(emb.layout.kind, "embedding");
  assert.deepEqual([...emb.a], [...byName.get(`${P}model.embed_tokens.lora_embedding_A`)!]);
  const conv = adapter.modules.get("model.conv")!;
  assert.deepEqual([conv.rank, conv.dIn, conv.dOut], [4, 12, 7]);
  assert.deepEqual(conv.layout, {
    kind: "conv",
    aShape: [3, 2, 2],
    bShape: [7, 1, 1],
    prefix: P,
    adapterName: "",
  });
  assert.deepEqual([...conv.a], [...byName.get(`${P}model.conv.lora_A.weight`)!]);
  assert.deepEqual([...conv.b], [...byName.get(`${P}model.conv.lora_B.weight`)!]);
  assert.deepEqual([...adapter.dense.keys()], [`${P}score.weight`]);
  assert.deepEqual(adapter.dense.get(`${P}score.weight`)!.shape, [2, 6]);
  assert.deepEqual([...adapter.dense.get(`${P}score.weight`)!.data], [...byName.get(`${P}score.weight`)!]);
});

test("decode rejects an A without B and a B without A, naming the tensor", () => {
  const entries = peftTensors();
  const noB = entries.filter((e) => !e.name.endsWith("v_proj.lora_B.weight"));
  rejects(
    () => decodeEntries(noB),
    /tensor "base_model.model.model.layers.2.self_attn.v_proj.lora_A.weight" has no matching ".*v_proj.lora_B.weight"/,
    `${P}model.layers.2.self_attn.v_proj.lora_A.weight`,
  );
  const noA = entries.filter((e) => !e.name.endsWith("lora_embedding_A"));
  rejects(() => decodeEntries(noA), /tensor ".*lora_embedding_B" has no matching ".*lora_embedding_A"/);
});

test("decode rejects factors of one module under two adapter names", () => {
  const entries = peftTensors().map((e) =>
    e.name.endsWith("q_proj.lora_B.default.weight")
      ? { ...e, name: e.name.replace(".default.", ".other.") }
      : e,
  );
  rejects(
    () => decodeEntries(entries),
    /are LoRA factors of the same module model.layers.10.self_attn.q_proj/,
  );
});

test("decode rejects ranks that disagree between A and B or with the config", () => {
  const entries = peftTensors().map((e) =>
    e.name.endsWith("q_proj.lora_B.default.weight") ? { ...e, shape: [4, 5] } : e,
  );
  rejects(
    () => decodeEntries(entries),
    /rank mismatch: tensor ".*q_proj.lora_A.default.weight" has rank 4, tensor ".*q_proj.lora_B.default.weight" has rank 5/,
  );
  rejects(
    () => decodeEntries(peftTensors(), CONFIG.replace('"r":4', '"r":8')),
    /tensor "base_model.model.model.conv.lora_A.weight" has rank 4, but adapter_config.json gives module model.conv rank 8/,
  );
  const badConv = peftTensors().map((e) =>
    e.name.endsWith("conv.lora_B.weight") ? { ...e, shape: [7, 4, 1, 2], data: new Float32Array(56) } : e,
  );
  rejects(() => decodeEntries(badConv), /has shape \[7, 4, 1, 2\], expected \[out, r, 1, 1\]/);
});

test("decode rejects NaN and Inf, naming the tensor and the first bad index", () => {
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
    const entries = peftTensors().map((e) => {
      if (!e.name.endsWith("v_proj.lora_B.weight")) return e;
      const data = e.data.slice();
      data[3] = bad;
      return { ...e, data };
    });
    rejects(
      () => decodeEntries(entries),
      new RegExp(`tensor ".*v_proj.lora_B.weight" has non-finite value ${bad} at index 3`),
      `${P}model.layers.2.self_attn.v_proj.lora_B.weight`,
    );
  }
});

test("decode rejects unsupported dtypes, no LoRA tensors, and names the config file for config errors", () => {
  const withIds = rawSafetensors(
    {
      "m.lora_A.weight": { dtype: "F32", shape: [4, 1], data_offsets: [0, 16] },
      "m.lora_B.weight": { dtype: "F32", shape: [1, 4], data_offsets: [16, 32] },
      position_ids: { dtype: "I64", shape: [1], data_offsets: [32, 40] },
    },
    new Uint8Array(40),
  );
  rejects(
    () => decodeAdapter(CONFIG, withIds, LABEL),
    /unsupported dtype I64 for tensor "position_ids" \(expected F32, F16 or BF16\)/,
    "position_ids",
  );
  const denseOnly = peftTensors().filter((e) => !e.name.includes("lora_"));
  rejects(() => decodeEntries(denseOnly), /no LoRA tensors/);
  rejects(
    () => decodeEntries(peftTensors(), "[]"),
    /expected a JSON object/,
    undefined,
    `${LABEL}/adapter_config.json`,
  );
  rejects(() => decodeAdapter(CONFIG, new Uint8Array(3), LABEL), /shorter than the 8-byte header length/);
});

interface Spec {
  name: string;
  rank: number;
  layout: LoraLayout;
}

const linear = (dIn: number, dOut: number, adapterName = ""): LoraLayout => ({
  kind: "linear",
  aShape: [dIn],
  bShape: [dOut],
  prefix: P,
  adapterName,
});

const SPECS: Spec[] = [
  { name: "model.layers.10.self_attn.q_proj", rank: 3, layout: linear(8, 6, "default") },
  { name: "model.layers.2.self_attn.q_proj", rank: 3, layout: linear(8, 6, "default") },
  { name: "model.layers.2.self_attn.k_proj", rank: 3, layout: linear(8, 4, "default") },
  { name: "model.layers.2.self_attn.v_proj", rank: 5, layout: linear(8, 4, "default") },
  {
    name: "model.embed_tokens",
    rank: 2,
    layout: { kind: "embedding", aShape: [11], bShape: [8], prefix: P, adapterName: "" },
  },
  {
    name: "model.conv",
    rank: 4,
    layout: { kind: "conv", aShape: [3, 2, 2], bShape: [5, 1, 1], prefix: P, adapterName: "" },
  },
];

function outputModules(): Map<string, OutputModule> {
  return new Map(
    SPECS.map((s, i) => {
      const dIn = s.layout.aShape.reduce((x, y) => x * y, 1);
      const a = randomArray(s.rank * dIn, 100 + i);
      const b = randomArray(s.layout.bShape[0] * s.rank, 200 + i);
      return [s.name, { a, b, rank: s.rank, layout: s.layout }];
    }),
  );
}

// rank_pattern "q_proj": 6 would give q_proj rank 6, not 3: it must be dropped; "k_proj": 3 stays.
const TEMPLATE = parseAdapterConfig(
  JSON.stringify({
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: "tiny/base",
    r: 8,
    lora_alpha: 16,
    use_rslora: true,
    rank_pattern: { q_proj: 6, k_proj: 3 },
    alpha_pattern: { v_proj: 4 },
    target_modules: ["q_proj", "k_proj", "v_proj"],
    lora_dropout: 0.1,
  }),
  "template/adapter_config.json",
);

for (const [dtype, tol] of [
  ["F32", 1e-6],
  ["BF16", 2e-2],
  ["F16", 2e-3],
] as [TensorDType, number][]) {
  test(`encode then decode (${dtype}) gives scaling · B · A = b · a for every module`, () => {
    const modules = outputModules();
    const dense = new Map([
      [`${P}score.weight`, { shape: [2, 3], data: new Float32Array([1, -2, 3, 0.5, 0, 4]) }],
    ]);
    const { configText, safetensors } = encodeAdapter({
      template: TEMPLATE,
      modules,
      dense,
      dtype,
      metadata: { round: "4" },
    });
    const decoded = decodeAdapter(configText, safetensors, "merged");
    assert.equal(decoded.dtype, dtype);
    assert.deepEqual(decoded.metadata, { round: "4", format: "pt" });
    assert.deepEqual([...decoded.modules.keys()].sort(), [...modules.keys()].sort());
    for (const [name, m] of modules) {
      const d = decoded.modules.get(name)!;
      assert.equal(d.rank, m.rank, name);
      assert.deepEqual(d.layout, m.layout, name);
      assert.notEqual(d.scaling, 1, name);
      const want = denseProduct(m.b, m.a, m.rank);
      const got = denseProduct(d.b, d.a, d.rank, d.scaling);
      const err = relativeError(got, want);
      assert.ok(err <= tol, `${name}: relative error ${err} > ${tol}`);
    }
    assert.deepEqual([...decoded.dense.get(`${P}score.weight`)!.data], [1, -2, 3, 0.5, 0, 4]);
  });
}

test("the written config keeps the template, sets r to the most common rank and a minimal rank_pattern", () => {
  const { configText, safetensors } = encodeAdapter({
    template: TEMPLATE,
    modules: outputModules(),
    dense: new Map(),
    dtype: "F32",
  });
  assert.ok(configText.endsWith("}\n"));
  const written = JSON.parse(configText);
  assert.equal(written.r, 3);
  assert.deepEqual(written.rank_pattern, {
    "model.layers.2.self_attn.v_proj": 5,
    "model.embed_tokens": 2,
    "model.conv": 4,
    k_proj: 3,
  });
  assert.deepEqual(Object.keys(written), Object.keys(TEMPLATE.raw));
  for (const key of [
    "peft_type",
    "task_type",
    "base_model_name_or_path",
    "lora_alpha",
    "use_rslora",
    "alpha_pattern",
    "target_modules",
    "lora_dropout",
  ]) {
    assert.deepEqual(written[key], TEMPLATE.raw[key], key);
  }
  const { tensors, metadata } = parseSafetensors(safetensors, "x");
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual(
    [...tensors.keys()],
    [
      `${P}model.conv.lora_A.weight`,
      `${P}model.conv.lora_B.weight`,
      `${P}model.embed_tokens.lora_embedding_A`,
      `${P}model.embed_tokens.lora_embedding_B`,
      `${P}model.layers.2.self_attn.k_proj.lora_A.default.weight`,
      `${P}model.layers.2.self_attn.k_proj.lora_B.default.weight`,
      `${P}model.layers.2.self_attn.q_proj.lora_A.default.weight`,
      `${P}model.layers.2.self_attn.q_proj.lora_B.default.weight`,
      `${P}model.layers.2.self_attn.v_proj.lora_A.default.weight`,
      `${P}model.layers.2.self_attn.v_proj.lora_B.default.weight`,
      `${P}model.layers.10.self_attn.q_proj.lora_A.default.weight`,
      `${P}model.layers.10.self_attn.q_proj.lora_B.default.weight`,
    ],
  );
  assert.deepEqual(tensors.get(`${P}model.conv.lora_A.weight`)!.shape, [4, 3, 2, 2]);
  assert.deepEqual(tensors.get(`${P}model.conv.lora_B.weight`)!.shape, [5, 4, 1, 1]);
  assert.deepEqual(tensors.get(`${P}model.embed_tokens.lora_embedding_A`)!.shape, [2, 11]);
  assert.deepEqual(tensors.get(`${P}model.embed_tokens.lora_embedding_B`)!.shape, [8, 2]);
});

test("B is stored divided by the written scaling (rsLoRA, alpha_pattern)", () => {
  const modules = outputModules();
  const { safetensors } = encodeAdapter({ template: TEMPLATE, modules, dense: new Map(), dtype: "F32" });
  const { tensors } = parseSafetensors(safetensors, "x");
  const stored = (name: string) => new Float32Array(tensors.get(name)!.bytes.slice().buffer);
  // v_proj: alpha 4 (alpha_pattern), rank 5, rsLoRA → s = 4 / √5.
  const v = modules.get("model.layers.2.self_attn.v_proj")!;
  const bv = stored(`${P}model.layers.2.self_attn.v_proj.lora_B.default.weight`);
  assert.ok(
    relativeError(
      bv,
      Float64Array.from(v.b, (x) => x / (4 / Math.sqrt(5))),
    ) < 1e-6,
  );
  // q_proj: alpha 16, rank 3 → s = 16 / √3.
  const q = modules.get("model.layers.2.self_attn.q_proj")!;
  const bq = stored(`${P}model.layers.2.self_attn.q_proj.lora_B.default.weight`);
  assert.ok(
    relativeError(
      bq,
      Float64Array.from(q.b, (x) => x / (16 / Math.sqrt(3))),
    ) < 1e-6,
  );
  assert.deepEqual([...stored(`${P}model.layers.2.self_attn.q_proj.lora_A.default.weight`)], [...q.a]);
});

test("a decoded adapter re-encoded with its own config reproduces its task vectors", () => {
  const adapter = decodeEntries(peftTensors());
  const { configText, safetensors } = encodeAdapter({
    template: adapter.config,
    modules: new Map([...adapter.modules].map(([n, m]) => [n, { ...m, b: m.b.map((x) => x * m.scaling) }])),
    dense: adapter.dense,
    dtype: "BF16",
  });
  const again = decodeAdapter(configText, safetensors, "again");
  assert.equal(JSON.parse(configText).r, 4);
  for (const [name, m] of adapter.modules) {
    const d = again.modules.get(name)!;
    assert.equal(d.scaling, m.scaling);
    assert.deepEqual([...d.b], [...m.b], name);
    assert.deepEqual([...d.a], [...m.a], name);
  }
});

test("encode rejects NaN, values that overflow the dtype, and factor sizes that do not match", () => {
  const modules = outputModules();
  const q = modules.get("model.layers.2.self_attn.q_proj")!;
  const a = q.a.slice();
  a[2] = Number.NaN;
  modules.set("model.layers.2.self_attn.q_proj", { ...q, a });
  assert.throws(
    () => encodeAdapter({ template: TEMPLATE, modules, dense: new Map(), dtype: "F32" }),
    (err: unknown) =>
      err instanceof AdapterFormatError &&
      err.tensor === `${P}model.layers.2.self_attn.q_proj.lora_A.default.weight` &&
      /value NaN at index 2 is not representable as F32/.test(err.message),
  );
  const big = outputModules();
  big.set("model.layers.2.self_attn.q_proj", { ...q, a: q.a.map(() => 1e5) });
  assert.throws(
    () => encodeAdapter({ template: TEMPLATE, modules: big, dense: new Map(), dtype: "F16" }),
    /value 100000 at index 0 is not representable as F16/,
  );
  const short = outputModules();
  short.set("model.layers.2.self_attn.q_proj", { ...q, a: q.a.subarray(1) });
  assert.throws(
    () => encodeAdapter({ template: TEMPLATE, modules: short, dense: new Map(), dtype: "F32" }),
    /module model.layers.2.self_attn.q_proj has rank 3 with 23 values in a/,
  );
});

test("a rank-0 module is written as a zero rank-1 module", () => {
  const layout = linear(4, 3);
  const { configText, safetensors } = encodeAdapter({
    template: TEMPLATE,
    modules: new Map([
      ["m.x", { a: new Float32Array(0), b: new Float32Array(0), rank: 0, layout }],
      ["m.y", { a: randomArray(8, 1), b: randomArray(6, 2), rank: 2, layout }],
    ]),
    dense: new Map(),
    dtype: "F32",
  });
  const x = decodeAdapter(configText, safetensors, "z").modules.get("m.x")!;
  assert.equal(x.rank, 1);
  assert.ok(x.a.every((v) => v === 0) && x.b.every((v) => v === 0));
});
