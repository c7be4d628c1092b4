/**
 * What the coordinator reports to OpenTelemetry, in its own words: rounds
 * changing state, updates and their steps, merges module by module,
 * publishes, durable writes, connected clients. Built on `@opentelemetry/api`
 * only, so it records nothing unless an SDK was started (`otel-sdk.mjs`).
 *
 * Traces: one long-lived `tributary.round` span per round (a root span linked
 * to the RPC that opened it) with children `tributary.round.open`,
 * `tributary.update` (children per step: `validate`, `upload`, `store`,
 * `validate_content`, `accept`; linked to the `SubmitUpdate` RPC span),
 * `tributary.merge` (one `tributary.merge.module` child per LoRA module with
 * method, rank, iterations, objective) and `tributary.round.publish`. Round
 * numbers and client ids are span attributes; metrics carry only bounded
 * attributes (see `instruments.ts`).
 */
import {
  type Attributes,
  type Context,
  context,
  type Link,
  type Meter,
  metrics,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { RoundRecord } from "../core/model.ts";
import type { RoundView, Telemetry } from "../core/telemetry.ts";
import { createInstruments, type Instruments } from "./instruments.ts";

/** Where `createTelemetry` records. */
export interface TelemetryOptions {
  /** Default: the global tracer `tributary` (no-op without an SDK). */
  readonly tracer?: Tracer;
  /** Default: the global meter `tributary` (no-op without an SDK). */
  readonly meter?: Meter;
  /** Wall clock in ms, compared with round records' `openedAt`/`quorumAt` (default `Date.now`). */
  readonly now?: () => number;
}

interface RoundTrack {
  readonly span: Span;
  readonly ctx: Context;
  readonly openedAt: number;
  quorum: boolean;
  closed: boolean;
  ended: boolean;
}

/** Ended rounds kept so a late publish still finds its parent. */
const ENDED_KEPT = 64;

const roundKey = (federationId: string, round: number) => `${federationId}\u0000${round}`;

/** A bounded label: an error class name (`InvalidUpdateError`), never a message. */
export function reasonOf(err: unknown): string {
  const name = err instanceof Error ? err.name : "";
  return /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(name) && name !== "Error" ? name : "other";
}

function markFailed(span: Span, err: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  if (err instanceof Error) span.recordException(err);
}

/** A link to the span active now (the RPC that caused something), if any. */
function activeLink(): Link[] {
  const span = trace.getSpan(context.active());
  return span?.isRecording() === true ? [{ context: span.spanContext() }] : [];
}

/**
 * Creates the coordinator's telemetry on the global OpenTelemetry API (or
 * the given tracer and meter).
 *
 * @example
 * const telemetry = createTelemetry();
 * const coordinator = createCoordinator({ store, pool, telemetry });
 */
export function createTelemetry(opts: TelemetryOptions = {}): Telemetry {
  const tracer = opts.tracer ?? trace.getTracer("tributary");
  const m: Instruments = createInstruments(opts.meter ?? metrics.getMeter("tributary"));
  const now = opts.now ?? Date.now;
  const rounds = new Map<string, RoundTrack>();

  const prune = () => {
    const ended = [...rounds].filter(([, t]) => t.ended);
    for (const [key] of ended.slice(0, Math.max(0, ended.length - ENDED_KEPT))) rounds.delete(key);
  };
  /** The round's span context, or the active one when the round is not traced here. */
  const parentOf = (federationId: string, round: number): Context =>
    rounds.get(roundKey(federationId, round))?.ctx ?? context.active();

  const openRound = (round: RoundRecord, method: string, resumed: boolean): RoundTrack => {
    const attributes: Attributes = {
      "tributary.federation": round.federationId,
      "tributary.round": round.number,
      "tributary.method": method,
      "tributary.cohort_size": round.cohort.length,
      ...(resumed ? { "tributary.resumed": true } : {}),
    };
    const startTime = new Date(round.openedAt);
    const span = tracer.startSpan("tributary.round", {
      root: true,
      startTime,
      attributes,
      links: activeLink(),
    });
    const ctx = trace.setSpan(ROOT_CONTEXT, span);
    if (!resumed) {
      tracer
        .startSpan(
          "tributary.round.open",
          { startTime, attributes: { ...attributes, "tributary.deadline_at": round.deadlineAt } },
          ctx,
        )
        .end();
    }
    const track: RoundTrack = {
      span,
      ctx,
      openedAt: round.openedAt,
      quorum: false,
      closed: false,
      ended: false,
    };
    rounds.set(roundKey(round.federationId, round.number), track);
    return track;
  };

  const roundChanged = ({ round, method, accepted, stragglers }: RoundView): void => {
    const key = roundKey(round.federationId, round.number);
    let t = rounds.get(key);
    const federation = { federation: round.federationId };
    if (t === undefined) {
      // Terminal rounds seen only at start-up were counted by an earlier process.
      if (round.state !== "open") return;
      t = openRound(round, method, false);
    }
    if (t.ended) return;
    t.span.setAttribute("tributary.accepted_updates", accepted);
    if (round.quorumAt !== undefined && !t.quorum) {
      t.quorum = true;
      m.timeToQuorum.record(Math.max(0, round.quorumAt - t.openedAt) / 1000, federation);
      t.span.addEvent("quorum", { "tributary.accepted_updates": accepted }, new Date(round.quorumAt));
    }
    if (round.state !== "open" && !t.closed) {
      t.closed = true;
      if (stragglers !== undefined) {
        m.stragglers.record(stragglers, federation);
        t.span.setAttribute("tributary.stragglers", stragglers);
      }
      t.span.addEvent("closed", { "tributary.accepted_updates": accepted });
    }
    if (round.state === "published" || round.state === "failed" || round.state === "aborted") {
      t.ended = true;
      const outcome = { ...federation, outcome: round.state };
      m.rounds.add(1, outcome);
      m.roundDuration.record(Math.max(0, now() - t.openedAt) / 1000, outcome);
      t.span.setAttribute("tributary.outcome", round.state);
      if (round.resultHash !== undefined) t.span.setAttribute("tributary.result_hash", round.resultHash);
      if (round.state !== "published") {
        t.span.setStatus({ code: SpanStatusCode.ERROR, message: round.failure ?? round.state });
      }
      t.span.end();
      prune();
    }
  };

  const update: Telemetry["update"] = (key) => {
    const federation = { federation: key.federationId };
    const links = activeLink();
    const span = tracer.startSpan(
      "tributary.update",
      {
        attributes: {
          "tributary.federation": key.federationId,
          "tributary.round": key.round,
          "tributary.client": key.clientId,
          "tributary.update_id": key.updateId,
        },
        links,
      },
      parentOf(key.federationId, key.round),
    );
    const ctx = trace.setSpan(context.active(), span);
    let bytes = 0;
    let done = false;
    const finish = (result: string, reason?: string) => {
      if (done) return;
      done = true;
      m.updates.add(1, { ...federation, result, ...(reason !== undefined ? { reason } : {}) });
      if (bytes > 0) m.updateBytes.add(bytes, federation);
      span.setAttributes({
        "tributary.bytes_received": bytes,
        "tributary.result": result,
        ...(reason !== undefined ? { "tributary.reason": reason } : {}),
      });
      span.end();
    };
    return {
      run: (fn) => context.with(ctx, fn),
      async step(name, fn) {
        const child = tracer.startSpan(`tributary.update.${name}`, {}, ctx);
        const t0 = performance.now();
        try {
          const out = await context.with(trace.setSpan(ctx, child), fn);
          if (name === "upload") m.uploadDuration.record((performance.now() - t0) / 1000, federation);
          return out;
        } catch (err) {
          markFailed(child, err);
          throw err;
        } finally {
          child.end();
        }
      },
      received(n) {
        bytes += n;
      },
      end: (result) => finish(result),
      fail(err) {
        markFailed(span, err);
        finish("rejected", reasonOf(err));
      },
    };
  };

  const merge: Telemetry["merge"] = ({ federationId, round, method, clients }) => {
    const attrs = { federation: federationId, method };
    const span = tracer.startSpan(
      "tributary.merge",
      {
        attributes: {
          "tributary.federation": federationId,
          "tributary.round": round,
          "tributary.method": method,
          "tributary.clients": clients,
        },
      },
      parentOf(federationId, round),
    );
    const ctx = trace.setSpan(context.active(), span);
    const t0 = performance.now();
    let done = false;
    const finish = (outcome: "ok" | "failed") => {
      if (done) return;
      done = true;
      m.mergeDuration.record((performance.now() - t0) / 1000, { ...attrs, outcome });
      span.end();
    };
    return {
      run: (fn) => context.with(ctx, fn),
      module(name, entry) {
        const { merged, report } = entry.result;
        const end = Date.now();
        const attributes: Attributes = {
          "tributary.module": name,
          "tributary.method": method,
          "tributary.rank": merged.rank,
          "tributary.iterations": report.iterations,
          "tributary.solver": report.solver,
          "tributary.merge_ms": entry.ms,
        };
        if (report.objective !== null && Number.isFinite(report.objective)) {
          attributes["tributary.objective"] = report.objective;
        }
        if (report.residual !== null && Number.isFinite(report.residual)) {
          attributes["tributary.residual"] = report.residual;
        }
        const child = tracer.startSpan(
          "tributary.merge.module",
          { startTime: new Date(end - entry.ms), attributes },
          ctx,
        );
        child.end(new Date(end));
        if (report.iterations > 0)
          m.alsIterations.record(report.iterations, { ...attrs, solver: report.solver });
      },
      excluded(clientId, err) {
        m.mergeExclusions.add(1, { ...attrs, reason: reasonOf(err) });
        span.addEvent("excluded", { "tributary.client": clientId, "tributary.reason": reasonOf(err) });
      },
      faultRetried(err) {
        const code = (err as { code?: unknown } | null)?.code;
        m.mergeFaultRetries.add(1, {
          federation: federationId,
          reason: typeof code === "string" ? code : reasonOf(err),
        });
        span.addEvent("fault_retry", { "tributary.reason": typeof code === "string" ? code : reasonOf(err) });
      },
      end(weights) {
        if (done) return;
        for (const w of weights) m.mergeWeight.record(w, attrs);
        span.setAttribute("tributary.weights", [...weights]);
        finish("ok");
      },
      fail(err) {
        if (done) return;
        markFailed(span, err);
        finish("failed");
      },
    };
  };

  return {
    roundChanged,
    roundResumed(round, method) {
      if (!rounds.has(roundKey(round.federationId, round.number))) openRound(round, method, true);
    },
    update,
    merge,
    async publish(federationId, round, fn) {
      const span = tracer.startSpan(
        "tributary.round.publish",
        { attributes: { "tributary.federation": federationId, "tributary.round": round } },
        parentOf(federationId, round),
      );
      const t0 = performance.now();
      let outcome = "ok";
      try {
        return await context.with(trace.setSpan(context.active(), span), fn);
      } catch (err) {
        outcome = reasonOf(err);
        markFailed(span, err);
        throw err;
      } finally {
        m.natsPublish.record((performance.now() - t0) / 1000, { federation: federationId, outcome });
        span.end();
      }
    },
    async storeWrite(operation, fn) {
      const active = trace.getSpan(context.active())?.isRecording() === true;
      const span = active ? tracer.startSpan(`tributary.store.${operation}`) : undefined;
      const t0 = performance.now();
      try {
        return await fn();
      } catch (err) {
        if (span !== undefined) markFailed(span, err);
        throw err;
      } finally {
        m.storeFsync.record((performance.now() - t0) / 1000, { operation });
        span?.end();
      }
    },
    observeActiveClients(read) {
      const callback = (result: { observe(value: number, attributes?: Attributes): void }) => {
        for (const [federation, connected] of read()) result.observe(connected, { federation });
      };
      m.activeClients.addCallback(callback);
      return () => m.activeClients.removeCallback(callback);
    },
    observePrivacy(read) {
      const callback = (result: { observe(value: number, attributes?: Attributes): void }) => {
        for (const [federation, epsilon] of read()) result.observe(epsilon, { federation });
      };
      m.privacyEpsilon.addCallback(callback);
      return () => m.privacyEpsilon.removeCallback(callback);
    },
    close() {
      for (const t of rounds.values()) {
        if (t.ended) continue;
        t.ended = true;
        t.span.setAttribute("tributary.interrupted", true);
        t.span.end();
      }
      rounds.clear();
    },
  };
}
