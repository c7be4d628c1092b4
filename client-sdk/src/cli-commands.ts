/**
 * The actions of `tributary client`: `join`, `submit`, `wait`, `fetch`,
 * `status`, each one short session of the SDK client over PEFT adapter
 * directories. Every command joins first (so the coordinator counts the
 * client as connected) and stays joined when it ends.
 */
import { readFile } from "node:fs/promises";
import { CHUNK_BYTES } from "@tributary/protocol";
import { adapterRank, readAdapter, writeAdapter } from "./adapter-files.ts";
import { adapterSchema } from "./adapter-schema.ts";
import {
  type CliEnv,
  type CliFlags,
  type ConnectionSettings,
  intFlag,
  metricsFlag,
  numFlag,
  resolveConnection,
  secondsFlag,
  statePathOf,
  str,
  UsageError,
} from "./cli-options.ts";
import { type ClientState, loadState, saveState } from "./cli-state.ts";
import { connect, type GlobalAdapter, type TributaryClient, type WaitOptions } from "./client.ts";
import { UnavailableError } from "./errors.ts";
import { type LocalDpOptions, localEpsilon } from "./local-dp.ts";
import { isTerminal, type RoundInfo } from "./round-info.ts";
import type { UploadProgress } from "./upload.ts";
import { describeWaiting } from "./waiting.ts";

/** Where the CLI writes: `out` for results (stdout), `err` for progress and errors (stderr). */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/** What every action gets. */
interface Context {
  readonly flags: CliFlags;
  readonly io: CliIo;
  readonly state: ClientState;
  readonly settings: ConnectionSettings;
  readonly client: TributaryClient;
  readonly json: boolean;
}

const MiB = 1024 * 1024;

function roundText(r: RoundInfo | undefined, clientId: string): string {
  if (r === undefined) return "no round has started yet";
  const cohort =
    r.cohort.length === 0
      ? "open to every client (buffered)"
      : r.cohort.includes(clientId)
        ? "in its cohort"
        : "not in its cohort";
  const extra = r.resultContentHash ?? r.failureReason;
  return `round ${r.number} ${r.state} (${r.acceptedUpdates}/${r.cohort.length} updates, ${clientId} ${cohort})${extra !== undefined ? `: ${extra}` : ""}`;
}

/** `--local-dp-clip C --local-dp-noise Z [--local-dp-delta D]`, both or neither. */
function localDpFlags(flags: CliFlags): { options: LocalDpOptions; delta: number } | undefined {
  const clipNorm = numFlag(flags, "local-dp-clip");
  const noiseMultiplier = numFlag(flags, "local-dp-noise");
  if (clipNorm === undefined && noiseMultiplier === undefined) return undefined;
  if (clipNorm === undefined || noiseMultiplier === undefined || clipNorm === 0)
    throw new UsageError("local DP needs --local-dp-clip C (> 0) and --local-dp-noise Z");
  const delta = numFlag(flags, "local-dp-delta") ?? 1e-5;
  if (!(delta > 0 && delta < 1)) throw new UsageError(`--local-dp-delta must be in (0, 1), got ${delta}`);
  return { options: { clipNorm, noiseMultiplier }, delta };
}

/** "; no round open: <why>" when the coordinator says why no round is open. */
function whyText(reason: string | undefined): string {
  return reason === undefined ? "" : `; no round open: ${reason}`;
}

function roundJson(r: RoundInfo | undefined): unknown {
  return r === undefined
    ? null
    : { ...r, openTime: r.openTime?.toISOString(), deadline: r.deadline?.toISOString() };
}

function timeoutSignal(flags: CliFlags): AbortSignal | undefined {
  const ms = secondsFlag(flags, "timeout");
  return ms === undefined ? undefined : AbortSignal.timeout(ms);
}

/** "3.5 of 12.0 MiB", in KiB below a MiB. */
function ofSize(done: number, total: number): string {
  const [unit, div] = total >= MiB ? ["MiB", MiB] : ["KiB", 1024];
  return `${(done / div).toFixed(1)} of ${(total / div).toFixed(1)} ${unit}`;
}

/** Prints upload progress to stderr: a line per 10 % for long transfers, and at least every 2 s. */
function progressPrinter(io: CliIo, total: number): (p: UploadProgress) => void {
  const long = total >= 4 * CHUNK_BYTES;
  let step = -1;
  let lastAt = Date.now();
  let attempt = 1;
  return (p) => {
    const now = Date.now();
    const decile = total === 0 ? 10 : Math.floor((p.sent / total) * 10);
    if (p.attempt !== attempt) {
      attempt = p.attempt;
      io.err(`resuming at ${ofSize(p.sent, total)} (try ${p.attempt})`);
      step = decile;
      lastAt = now;
      return;
    }
    if ((long && decile > step) || now - lastAt >= 2_000) {
      step = decile;
      lastAt = now;
      io.err(`uploaded ${ofSize(p.sent, total)} (${decile * 10}%)`);
    }
  };
}

/** Prints download progress to stderr: a line per 10 % of a long download, and at least every 2 s. */
function downloadPrinter(io: CliIo): (received: number, total: number) => void {
  let step = -1;
  let lastAt = Date.now();
  return (received, total) => {
    const now = Date.now();
    const decile = total === 0 ? 10 : Math.floor((received / total) * 10);
    if ((total >= 4 * CHUNK_BYTES && decile > step) || now - lastAt >= 2_000 || received === total) {
      if (decile === step && received !== total) return;
      step = decile;
      lastAt = now;
      io.err(`downloaded ${ofSize(received, total)} (${decile * 10}%)`);
    }
  };
}

/** The waiting reports and download progress of a wait, on stderr (none with --json). */
function waitReports(ctx: Context): Pick<WaitOptions, "onWaiting" | "onDownload"> {
  if (ctx.json) return {};
  return { onWaiting: (w) => ctx.io.err(describeWaiting(w)), onDownload: downloadPrinter(ctx.io) };
}

/** `--rank N` (0 = the whole merged adapter), else the rank of this client's last submitted adapter. */
function rankChoice(ctx: Context): number | undefined {
  const flag = intFlag(ctx.flags, "rank");
  if (flag !== undefined) return flag;
  return ctx.state.federation === ctx.settings.federation ? ctx.state.lastSubmittedRank : undefined;
}

function printAdapter(ctx: Context, adapter: GlobalAdapter, out: string | undefined): void {
  if (ctx.json) {
    ctx.io.out(
      JSON.stringify({
        round: adapter.round,
        contentHash: adapter.contentHash,
        size: adapter.safetensors.byteLength,
        source: adapter.source,
        rank: adapter.rank ?? null,
        out: out ?? null,
      }),
    );
  } else {
    ctx.io.out(`${adapter.round} ${adapter.contentHash}`);
    ctx.io.err(
      `round ${adapter.round}: merged adapter${adapter.rank !== undefined ? ` at this client's rank ${adapter.rank}` : ""} (${adapter.safetensors.byteLength} bytes, via ${adapter.source})` +
        (out !== undefined ? ` written to ${out}` : ""),
    );
  }
}

const ACTIONS: Record<string, (ctx: Context) => Promise<number>> = {
  async join(ctx) {
    const { client, settings, state } = ctx;
    const dir = str(ctx.flags, "adapter");
    const schema = dir === undefined ? undefined : adapterSchema(await readAdapter(dir));
    const res = await client.join(settings.federation, schema);
    await saveState(settings.statePath, {
      coordinator: settings.coordinator,
      federation: settings.federation,
      clientId: res.clientId,
      ...(settings.tokenFile !== undefined
        ? { tokenFile: settings.tokenFile }
        : settings.token !== ""
          ? { token: settings.token }
          : {}),
      ...(settings.natsUrl !== undefined ? { natsUrl: settings.natsUrl } : {}),
      ...(settings.tlsCa !== undefined ? { tlsCa: settings.tlsCa } : {}),
      ...(settings.tlsCert !== undefined && settings.tlsKey !== undefined
        ? { tlsCert: settings.tlsCert, tlsKey: settings.tlsKey }
        : {}),
      ...(state.federation === settings.federation && state.lastSubmittedRound !== undefined
        ? { lastSubmittedRound: state.lastSubmittedRound }
        : {}),
      // This machine's local-DP account stays whatever it joins.
      ...(state.localDp !== undefined ? { localDp: state.localDp } : {}),
    });
    if (ctx.json) {
      ctx.io.out(
        JSON.stringify({
          clientId: res.clientId,
          federation: settings.federation,
          round: roundJson(res.currentRound),
        }),
      );
    } else {
      ctx.io.out(
        `joined ${settings.federation} as ${res.clientId}; ${roundText(res.currentRound, res.clientId)}${whyText(res.waitingReason)}`,
      );
      ctx.io.err(`saved the connection to ${settings.statePath}`);
    }
    return 0;
  },

  async submit(ctx) {
    const { client, settings, flags, io } = ctx;
    const dir = flags.positionals[0];
    if (dir === undefined || flags.positionals.length > 1)
      throw new UsageError("submit needs one ADAPTER_DIR");
    const roundFlag = intFlag(flags, "round");
    const samples = intFlag(flags, "samples");
    const metrics = metricsFlag(flags);
    const updateId = str(flags, "update-id");
    const signal = timeoutSignal(flags);
    const localDp = localDpFlags(flags);
    const adapter = await readAdapter(dir);
    const joined = await client.join(settings.federation);
    if (samples === undefined && joined.weightsBySamples) {
      throw new UsageError(
        `submit needs --samples N: federation "${settings.federation}" weights updates by their training sample counts (${joined.federation.merge?.method})`,
      );
    }
    const round =
      roundFlag ??
      (await client.nextRound({ ...(signal !== undefined ? { signal } : {}), ...waitReports(ctx) })).number;
    const res = await client.submit(round, adapter, {
      ...(samples !== undefined ? { samples } : {}),
      metrics,
      onProgress: progressPrinter(io, adapter.safetensors.byteLength),
      ...(updateId !== undefined ? { updateId } : {}),
      ...(signal !== undefined ? { signal } : {}),
      ...(localDp !== undefined ? { localDp: localDp.options } : {}),
    });
    const state = await loadState(settings.statePath);
    // Local DP: this client's own account, every update it sent that way composed.
    const z = localDp === undefined ? undefined : String(localDp.options.noiseMultiplier);
    const spent = { ...state.localDp, ...(z !== undefined ? { [z]: (state.localDp?.[z] ?? 0) + 1 } : {}) };
    const rank = adapterRank(adapter.configJson);
    await saveState(settings.statePath, {
      ...state,
      lastSubmittedRound: round,
      ...(rank !== undefined ? { lastSubmittedRank: rank } : {}),
      ...(z !== undefined ? { localDp: spent } : {}),
    });
    const epsilon =
      localDp === undefined
        ? undefined
        : localEpsilon(
            Object.entries(spent).map(([zz, submissions]) => ({ noiseMultiplier: Number(zz), submissions })),
            localDp.delta,
          );
    if (ctx.json)
      io.out(JSON.stringify({ ...res, ...(epsilon !== undefined ? { localEpsilon: epsilon } : {}) }));
    else {
      io.out(
        `${res.duplicate ? "already accepted" : "accepted"}: update ${res.updateId} for round ${res.round} ` +
          `(${res.size} bytes, sha256 ${res.sha256})`,
      );
      if (res.localDp !== undefined && epsilon !== undefined) {
        io.err(
          `local DP: norm ${res.localDp.norm.toPrecision(4)}${res.localDp.clipped ? ` clipped to ${localDp?.options.clipNorm}` : ""}, noise σ = ${res.localDp.sigma.toPrecision(4)}; ` +
            `this client's ε = ${Number.isFinite(epsilon) ? epsilon.toFixed(4) : "∞"} at δ = ${localDp?.delta} over its local-DP updates`,
        );
      }
    }
    return 0;
  },

  async wait(ctx) {
    const { client, settings, flags, state } = ctx;
    const signal = timeoutSignal(flags);
    await client.join(settings.federation);
    let round = intFlag(flags, "round");
    if (round === undefined && state.federation === settings.federation) round = state.lastSubmittedRound;
    if (round === undefined) {
      const current = client.currentRound();
      round = current === undefined ? 1 : isTerminal(current.state) ? current.number + 1 : current.number;
    }
    if (!ctx.json) ctx.io.err(`waiting for round ${round} to be merged…`);
    const rank = rankChoice(ctx);
    const adapter = await client.waitForResult(round, {
      ...(signal !== undefined ? { signal } : {}),
      ...(rank !== undefined ? { rank } : {}),
      ...waitReports(ctx),
    });
    const out = str(flags, "out");
    if (out !== undefined) await writeAdapter(out, adapter);
    printAdapter(ctx, adapter, out);
    return 0;
  },

  async fetch(ctx) {
    const { client, settings, flags } = ctx;
    const out = str(flags, "out");
    if (out === undefined) throw new UsageError("fetch needs --out DIR");
    const signal = timeoutSignal(flags);
    await client.join(settings.federation);
    const round = intFlag(flags, "round");
    const rank = rankChoice(ctx);
    const adapter = await client.globalAdapter({
      ...(round !== undefined ? { round } : {}),
      ...(rank !== undefined ? { rank } : {}),
      ...(signal !== undefined ? { signal } : {}),
      ...waitReports(ctx),
    });
    await writeAdapter(out, adapter);
    printAdapter(ctx, adapter, out);
    return 0;
  },

  async status(ctx) {
    const { client, settings } = ctx;
    const res = await client.join(settings.federation);
    const r = res.currentRound;
    if (ctx.json) {
      ctx.io.out(
        JSON.stringify({
          clientId: res.clientId,
          federation: settings.federation,
          round: roundJson(r),
          inCohort: r?.cohort.includes(res.clientId) ?? false,
          lastSubmittedRound: ctx.state.lastSubmittedRound ?? null,
          waitingReason: res.waitingReason ?? null,
        }),
      );
    } else ctx.io.out(`${settings.federation}: ${roundText(r, res.clientId)}${whyText(res.waitingReason)}`);
    return 0;
  },
};

/** Names of the actions. */
export const ACTION_NAMES = Object.keys(ACTIONS);

/** Runs `action` with a client built from flags, environment and state; returns the exit code (errors propagate). */
export async function runAction(action: string, flags: CliFlags, io: CliIo, env: CliEnv): Promise<number> {
  const run = ACTIONS[action];
  if (run === undefined) throw new UsageError(`unknown client action "${action}"`);
  const statePath = statePathOf(flags, env);
  const state = await loadState(statePath);
  const settings = await resolveConnection(flags, env, state, statePath);
  const client = connect({
    coordinator: settings.coordinator,
    token: settings.token,
    ...(settings.natsUrl !== undefined ? { nats: settings.natsUrl } : {}),
    ...(settings.tlsCa !== undefined || settings.tlsCert !== undefined
      ? {
          tls: {
            ...(settings.tlsCa !== undefined ? { ca: await readFile(settings.tlsCa) } : {}),
            ...(settings.tlsCert !== undefined && settings.tlsKey !== undefined
              ? { cert: await readFile(settings.tlsCert), key: await readFile(settings.tlsKey) }
              : {}),
          },
        }
      : {}),
    retry: {
      ...(settings.attempts !== undefined ? { attempts: settings.attempts } : {}),
      onRetry: (r) => io.err(`retrying ${r.what} in ${(r.delayMs / 1000).toFixed(1)} s (${r.reason})`),
    },
  });
  let stayJoined = true;
  try {
    return await run({ flags, io, state, settings, client, json: flags.values.json === true });
  } catch (err) {
    if (err instanceof UnavailableError) stayJoined = false;
    throw err;
  } finally {
    await client.close({ stayJoined }).catch(() => {});
  }
}
