// The operator page's script: fetches the read-only JSON API every few
// seconds and renders the federation summary, the two SVG charts, the round
// timeline and the selected round's clients. Plain DOM: every string reaches
// the page through text nodes or attributes, never through HTML parsing.
// Loaded as a module (strict, deferred).

const REFRESH_MS = 5000;
const ROUND_LIMIT = 50;
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = [
  "#2563eb",
  "#db2777",
  "#059669",
  "#d97706",
  "#7c3aed",
  "#0891b2",
  "#dc2626",
  "#65a30d",
  "#c026d3",
  "#0d9488",
  "#ea580c",
  "#4f46e5",
];

const state = {
  /** @type {any[]} */ federations: [],
  /** @type {string | null} */ federationId: null,
  /** @type {any | null} */ rounds: null,
  /** @type {number | null} */ selectedRound: null,
  followLatest: true,
  /** @type {string | null} */ metric: null,
  /** @type {ReturnType<typeof setTimeout> | undefined} */ timer: undefined,
};

// ---------------------------------------------------------------- DOM helpers

/** An element with attributes (`on…` = listeners) and text/element children. */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

/** An SVG element. */
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
}

function append(e, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

const $ = (id) => document.getElementById(id);

// ----------------------------------------------------------------- formatting

function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} m`;
}

function fmtTime(epochMs) {
  if (epochMs === null || epochMs === undefined) return "—";
  const d = new Date(epochMs);
  const time = d.toLocaleTimeString([], { hour12: false });
  const today = new Date().toDateString() === d.toDateString();
  return today ? time : `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

/** Axis labels: round numbers of ms, s or min. */
function fmtEpsilon(e) {
  return e === null || e === undefined
    ? "—"
    : typeof e === "number" && Number.isFinite(e)
      ? e.toFixed(2)
      : "∞";
}

function fmtTick(ms) {
  if (ms === 0) return "0";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Number((ms / 1000).toFixed(2))} s`;
  return `${Number((ms / 60_000).toFixed(2))} min`;
}

const fmtWeight = (w) => (w === null || w === undefined ? "—" : w.toFixed(3));
const fmtInt = (n) => Number(n).toLocaleString();

/** 1, 2 or 5 × 10^k at or above `x`. */
function niceStep(x) {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  const f = x / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function niceTicks(max, count) {
  const step = niceStep((max > 0 ? max : 1) / count);
  const top = Math.max(step, Math.ceil((max > 0 ? max : 1) / step) * step);
  const ticks = [];
  for (let t = 0; t <= top + step / 2; t += step) ticks.push(t);
  return { top, ticks };
}

function median(values) {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function federation() {
  return state.federations.find((f) => f.id === state.federationId) ?? null;
}

/** A stable colour per client: its position among the federation's enrolled clients. */
function colorOf(clientId) {
  const f = federation();
  let i = f ? f.clients.findIndex((c) => c.id === clientId) : -1;
  if (i < 0) {
    i = 0;
    for (const ch of clientId) i = (i * 31 + ch.charCodeAt(0)) >>> 0;
  }
  return PALETTE[i % PALETTE.length];
}

/** A small colour square (legend, client rows). */
function swatch(color) {
  const i = el("i", { class: "swatch" });
  i.style.backgroundColor = color;
  return i;
}

/** `text` in full when short, else its start with the rest a click away. */
function expandable(text, cls) {
  if (text.length <= 72) return el("span", { class: cls }, text);
  return el(
    "details",
    { class: `${cls} expandable` },
    el("summary", {}, `${text.slice(0, 64)}…`),
    el("span", { class: "full-text" }, text),
  );
}

function badge(text, kind) {
  return el("span", { class: `badge badge-${kind}` }, text);
}

// ------------------------------------------------------------------- fetching

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: "application/json" }, cache: "no-store" });
  if (res.status === 401) {
    location.assign("/login");
    throw new Error("signed out");
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      message = (await res.json()).error ?? message;
    } catch {
      // keep the status line
    }
    throw new Error(message);
  }
  return res.json();
}

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.federationId = p.get("federation");
  const r = Number.parseInt(p.get("round") ?? "", 10);
  if (Number.isFinite(r)) {
    state.selectedRound = r;
    state.followLatest = false;
  }
}

function writeHash() {
  const p = new URLSearchParams();
  if (state.federationId !== null) p.set("federation", state.federationId);
  if (!state.followLatest && state.selectedRound !== null) p.set("round", String(state.selectedRound));
  history.replaceState(null, "", `#${p.toString()}`);
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    const feds = await getJson("/api/federations");
    state.federations = feds.federations;
    if (!state.federations.some((f) => f.id === state.federationId)) {
      state.federationId = state.federations[0]?.id ?? null;
      state.followLatest = true;
    }
    state.rounds =
      state.federationId === null
        ? null
        : await getJson(
            `/api/federations/${encodeURIComponent(state.federationId)}/rounds?limit=${ROUND_LIMIT}`,
          );
    render();
    showError(null);
    $("refreshed").textContent = `updated ${fmtTime(Date.now())}`;
  } catch (err) {
    showError(`Could not refresh: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    state.timer = setTimeout(refresh, REFRESH_MS);
  }
}

function showError(message) {
  const banner = $("error");
  banner.hidden = message === null;
  banner.textContent = message ?? "";
}

// ------------------------------------------------------------------ rendering

function render() {
  renderPicker();
  const f = federation();
  $("empty").hidden = f !== null;
  document.querySelector("main").classList.toggle("no-federation", f === null);
  if (f === null || state.rounds === null) return;
  const rounds = state.rounds.rounds;
  const latest = rounds.length > 0 ? rounds[rounds.length - 1].number : null;
  if (state.followLatest || !rounds.some((r) => r.number === state.selectedRound)) {
    state.selectedRound = latest;
    state.followLatest = true;
  }
  writeHash();
  renderSummary(f, rounds);
  renderDurationChart(rounds);
  renderWeightsChart(rounds);
  renderMetricsChart(rounds);
  renderRounds(rounds);
  renderClients(rounds.find((r) => r.number === state.selectedRound) ?? null);
  renderClientList(f);
}

function renderPicker() {
  const select = $("federation");
  const options = state.federations.map((f) =>
    el(
      "option",
      { value: f.id, selected: f.id === state.federationId },
      f.name ? `${f.name} (${f.id})` : f.id,
    ),
  );
  select.replaceChildren(...options);
  select.value = state.federationId ?? "";
  select.disabled = state.federations.length === 0;
}

function card(label, value, sub, extra, wide) {
  return el(
    "div",
    { class: wide ? "card card-wide" : "card" },
    el("div", { class: "card-label" }, label),
    el("div", { class: "card-value" }, value, extra ?? null),
    sub ? el("div", { class: "card-sub" }, sub) : null,
  );
}

function renderSummary(f, rounds) {
  const connected = f.clients.filter((c) => c.connected).length;
  const closed = rounds.filter((r) => r.closedAt !== null && r.state !== "aborted");
  const medDuration = median(closed.map((r) => r.durationMs));
  const medMerge = median(rounds.filter((r) => r.mergeMs !== null).map((r) => r.mergeMs));
  const bytes = rounds.reduce((s, r) => s + r.bytes, 0);
  const p = f.policy;
  const cohort =
    p.cohortSize !== null || p.cohortFraction !== null
      ? `cohort ${[p.cohortSize, p.cohortFraction !== null ? `${Math.round(p.cohortFraction * 100)}%` : null]
          .filter((x) => x !== null)
          .join(" / ")}`
      : "cohort all";
  const current = f.currentRound;
  $("summary").replaceChildren(
    card("Federation", f.name || f.id, `${f.id} · ${f.baseModel}`, null, true),
    card(
      "Merge",
      f.method,
      `${f.rank === null ? "rank of the inputs" : `rank ${f.rank}`} · ${f.modules} modules`,
    ),
    card("Clients", `${connected} / ${f.clients.length}`, "connected / enrolled"),
    ...(f.leader
      ? [
          card(
            "Leader",
            f.leader.here ? "this coordinator" : f.leader.coordinatorId,
            `${f.leader.coordinatorId}${f.leader.address ? ` at ${f.leader.address}` : ""} · term ${f.leader.term}`,
          ),
        ]
      : []),
    card(
      "Current round",
      current ? `#${current.number} ` : "none",
      f.waitingReason ? `no round open: ${f.waitingReason}` : `quorum ${p.quorum} · ${cohort}`,
      current ? badge(current.state, current.state) : null,
    ),
    card("Published", `${f.publishedRounds} / ${f.rounds}`, "rounds"),
    ...(f.privacy
      ? [
          card(
            "Privacy ε",
            `${fmtEpsilon(f.privacy.epsilon)}${f.privacy.epsilonBudget > 0 ? ` / ${f.privacy.epsilonBudget}` : ""} `,
            `δ ${f.privacy.delta} · ${f.privacy.rounds} round(s)`,
            f.privacy.budgetSpent ? badge("budget spent", "failed") : null,
          ),
        ]
      : []),
    card("Data received", fmtBytes(bytes), `last ${rounds.length} rounds`),
    card("Median round", fmtMs(medDuration), `merge ${fmtMs(medMerge)}`),
  );
}

function chartFrame(container, height) {
  const width = Math.max(280, Math.floor(container.clientWidth || 600));
  const m = { left: 60, right: 14, top: 12, bottom: 30 };
  const root = svg("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    class: "chart-svg",
  });
  return { root, width, height, m, plotW: width - m.left - m.right, plotH: height - m.top - m.bottom };
}

function yAxis(frame, ticks, top, label) {
  const { root, m, plotW, plotH } = frame;
  for (const t of ticks) {
    const y = m.top + plotH - (t / top) * plotH;
    root.append(
      svg("line", { class: "grid", x1: m.left, x2: m.left + plotW, y1: y, y2: y }),
      svg("text", { class: "tick", x: m.left - 8, y: y + 4, "text-anchor": "end" }, label(t)),
    );
  }
}

function xLabels(frame, rounds, xOf) {
  const { root, m, plotH } = frame;
  const every = Math.max(1, Math.ceil(rounds.length / Math.max(1, Math.floor(frame.plotW / 36))));
  rounds.forEach((r, i) => {
    if (i % every !== 0 && i !== rounds.length - 1) return;
    root.append(
      svg(
        "text",
        { class: "tick", x: xOf(i), y: m.top + plotH + 18, "text-anchor": "middle" },
        `#${r.number}`,
      ),
    );
  });
}

function emptyChart(frame, text) {
  frame.root.append(
    svg(
      "text",
      { class: "chart-empty", x: frame.width / 2, y: frame.height / 2, "text-anchor": "middle" },
      text,
    ),
  );
}

function renderDurationChart(rounds) {
  const container = $("duration-chart");
  const frame = chartFrame(container, 240);
  const { root, m, plotW, plotH } = frame;
  const shown = rounds.filter((r) => r.state !== "aborted" || r.durationMs > 0);
  if (shown.length === 0) {
    emptyChart(frame, "No rounds yet");
    container.replaceChildren(root);
    return;
  }
  const total = (r) => r.durationMs + (r.mergeMs ?? 0);
  const { top, ticks } = niceTicks(Math.max(...shown.map(total)), 4);
  yAxis(frame, ticks, top, fmtTick);
  const band = plotW / shown.length;
  const barW = Math.max(3, Math.min(40, band * 0.64));
  const xOf = (i) => m.left + band * i + band / 2;
  // Whole pixels, so that even a 1 px merge segment shows in its own colour.
  const yOf = (v) => Math.round(m.top + plotH - (v / top) * plotH);
  const base = Math.round(m.top + plotH);
  // The trend of the total (collect + merge), under the bars.
  const trend = shown.map((r, i) => `${i === 0 ? "M" : "L"}${xOf(i).toFixed(1)},${yOf(total(r))}`);
  if (shown.length > 1) root.append(svg("path", { class: "trend", d: trend.join(" ") }));
  shown.forEach((r, i) => {
    const x = Math.round(xOf(i) - barW / 2);
    const collectTop = Math.min(yOf(r.durationMs), base - 1);
    const running = r.state === "open";
    const title = `Round ${r.number} (${r.state}): collecting ${fmtMs(r.durationMs)}${
      running ? " so far" : ""
    }, merging ${fmtMs(r.mergeMs)}`;
    const group = svg("g", { class: `bar-group${r.number === state.selectedRound ? " selected" : ""}` });
    group.append(
      svg(
        "rect",
        {
          class: `bar collect state-${r.state}`,
          x,
          y: collectTop,
          width: Math.round(barW),
          height: base - collectTop,
          "data-round": r.number,
        },
        svg("title", {}, title),
      ),
    );
    if (r.mergeMs !== null) {
      const mergeTop = Math.min(yOf(total(r)), collectTop - 1);
      group.append(
        svg(
          "rect",
          {
            class: "bar merge",
            x,
            y: mergeTop,
            width: Math.round(barW),
            height: collectTop - mergeTop,
            "data-round": r.number,
          },
          svg("title", {}, title),
        ),
      );
    }
    group.addEventListener("click", () => selectRound(r.number));
    root.append(group);
  });
  root.append(
    svg("line", { class: "axis", x1: m.left, x2: m.left + plotW, y1: m.top + plotH, y2: m.top + plotH }),
  );
  xLabels(frame, shown, xOf);
  container.replaceChildren(root);
}

/** Dash patterns and marker shapes, so series differ by more than colour. */
const DASHES = ["", "7 4", "2 3", "10 3 2 3"];
const MARKERS = ["circle", "square", "triangle", "diamond"];

/** How one client's series is drawn: its colour, a dash pattern and a marker shape. */
function seriesStyle(clientId) {
  const f = federation();
  let i = f ? f.clients.findIndex((c) => c.id === clientId) : -1;
  if (i < 0) i = 0;
  return {
    color: colorOf(clientId),
    dash: DASHES[Math.floor(i / PALETTE.length + i) % DASHES.length],
    marker: MARKERS[i % MARKERS.length],
  };
}

/** A marker of `shape` at (x, y). */
function markerAt(shape, x, y, color, attrs, title) {
  const r = 3.6;
  const common = { class: "dot", fill: color, ...attrs };
  const t = svg("title", {}, title);
  if (shape === "square")
    return svg("rect", { ...common, x: x - r, y: y - r, width: 2 * r, height: 2 * r }, t);
  if (shape === "triangle")
    return svg(
      "path",
      { ...common, d: `M${x},${y - r - 1} L${x + r + 0.5},${y + r} L${x - r - 0.5},${y + r} Z` },
      t,
    );
  if (shape === "diamond")
    return svg(
      "path",
      { ...common, d: `M${x},${y - r - 1} L${x + r + 1},${y} L${x},${y + r + 1} L${x - r - 1},${y} Z` },
      t,
    );
  return svg("circle", { ...common, cx: x, cy: y, r }, t);
}

/**
 * A line chart over `rounds`: one series per entry of `series` (`value(r)`
 * gives its point in round `r`, or null), each with its colour, dash and
 * marker, and a legend with each series' latest value.
 */
function renderSeriesChart(containerId, legendId, rounds, series, fmt, emptyText) {
  const container = $(containerId);
  const legend = $(legendId);
  const frame = chartFrame(container, 240);
  const { root, m, plotW, plotH } = frame;
  const values = rounds.flatMap((r) => series.map((x) => x.value(r)).filter((v) => v !== null));
  if (rounds.length === 0 || values.length === 0) {
    emptyChart(frame, emptyText);
    container.replaceChildren(root);
    legend.replaceChildren();
    return;
  }
  const lo = Math.min(0, ...values);
  const { top, ticks } = niceTicks(Math.max(...values) - lo, 4);
  yAxis(frame, ticks, top, (t) => fmt(t + lo));
  const band = plotW / rounds.length;
  const xOf = (i) => m.left + band * i + band / 2;
  const yOf = (v) => m.top + plotH - ((v - lo) / top) * plotH;
  const legendItems = [];
  for (const x of series) {
    let d = "";
    let pen = false;
    const dots = [];
    let last = null;
    rounds.forEach((r, i) => {
      const v = x.value(r);
      if (v === null) {
        pen = false;
        return;
      }
      const px = Number(xOf(i).toFixed(1));
      const py = Number(yOf(v).toFixed(1));
      d += `${pen ? "L" : "M"}${px},${py} `;
      pen = true;
      last = v;
      dots.push(
        markerAt(
          x.marker,
          px,
          py,
          x.color,
          { "data-client": x.id },
          `${x.label} · round ${r.number}: ${fmt(v)}`,
        ),
      );
    });
    if (d === "") continue;
    const path = svg("path", {
      class: `line${x.mean ? " mean" : ""}`,
      d: d.trim(),
      stroke: x.color,
      "data-client": x.id,
    });
    if (x.dash) path.setAttribute("stroke-dasharray", x.dash);
    root.append(path, ...dots);
    const sw = swatch(x.color);
    sw.dataset.marker = x.marker;
    legendItems.push(
      el(
        "li",
        { "data-series": x.id },
        sw,
        el("span", { class: "legend-name" }, x.label),
        el("span", { class: "legend-value" }, fmt(last)),
      ),
    );
  }
  root.append(
    svg("line", { class: "axis", x1: m.left, x2: m.left + plotW, y1: m.top + plotH, y2: m.top + plotH }),
  );
  xLabels(frame, rounds, xOf);
  container.replaceChildren(root);
  legend.replaceChildren(...legendItems);
}

/** The federation's clients, then any other client that submitted in `rounds`. */
function clientIdsOf(rounds) {
  const f = federation();
  const ids = [...(f ? f.clients.map((c) => c.id) : [])];
  for (const r of rounds) for (const s of r.submissions) if (!ids.includes(s.clientId)) ids.push(s.clientId);
  return ids;
}

function renderWeightsChart(rounds) {
  const merged = rounds.filter((r) => r.submissions.some((s) => s.weight !== null));
  const series = clientIdsOf(merged).map((id) => ({
    id,
    label: id,
    ...seriesStyle(id),
    value: (r) => r.submissions.find((s) => s.clientId === id)?.weight ?? null,
  }));
  const maxW = Math.max(0, ...merged.flatMap((r) => r.submissions.map((s) => s.weight ?? 0)));
  renderSeriesChart(
    "weights-chart",
    "weights-legend",
    merged,
    series,
    (v) => (v === null ? "—" : maxW < 0.1 ? v.toFixed(3) : v.toFixed(3)),
    "No merged rounds yet",
  );
}

/** The metrics clients reported in `rounds`, sorted. */
function metricNames(rounds) {
  return [
    ...new Set(rounds.flatMap((r) => r.submissions.flatMap((s) => Object.keys(s.metrics ?? {})))),
  ].sort();
}

function renderMetricsChart(rounds) {
  const names = metricNames(rounds);
  const select = $("metric");
  if (!names.includes(state.metric)) state.metric = names[0] ?? null;
  select.replaceChildren(...names.map((n) => el("option", { value: n, selected: n === state.metric }, n)));
  select.hidden = names.length < 2;
  $("metric-name").textContent = state.metric ?? "";
  const name = state.metric;
  const withMetric =
    name === null ? [] : rounds.filter((r) => r.submissions.some((s) => name in (s.metrics ?? {})));
  const series = clientIdsOf(withMetric).map((id) => ({
    id,
    label: id,
    ...seriesStyle(id),
    value: (r) => r.submissions.find((s) => s.clientId === id)?.metrics?.[name] ?? null,
  }));
  series.push({
    id: "__mean",
    label: "weighted mean (samples)",
    color: "#111827",
    dash: "",
    marker: "diamond",
    mean: true,
    value: (r) => r.metricsMean?.[name] ?? null,
  });
  const fmt = (v) => (v === null ? "—" : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  renderSeriesChart(
    "metrics-chart",
    "metrics-legend",
    withMetric,
    series,
    fmt,
    "No client metrics reported yet",
  );
}

const STATE_LABEL = {
  open: "open",
  merging: "merging",
  published: "published",
  failed: "failed",
  aborted: "aborted",
};

function renderRounds(rounds) {
  const rows = [...rounds].reverse().map((r) => {
    const running = r.state === "open";
    const stragglers =
      r.stragglers.length === 0
        ? el("span", { class: "muted" }, running ? "—" : "none")
        : el(
            "span",
            { class: "chips" },
            r.stragglers.map((id) =>
              el("span", { class: `chip ${running ? "chip-waiting" : "chip-straggler"}` }, id),
            ),
          );
    const result = r.failure
      ? expandable(r.failure, "failure")
      : r.resultHash
        ? el(
            "span",
            { class: "hash", title: r.resultHash },
            el("code", {}, `${r.resultHash.slice(0, 12)}…`),
            r.published ? el("span", { class: "announced", title: "announced on NATS" }, " ✓") : null,
          )
        : el("span", { class: "muted" }, "—");
    const quorumMet = r.accepted >= r.quorum;
    const row = el(
      "tr",
      {
        class: `round-row${r.number === state.selectedRound ? " selected" : ""}`,
        tabindex: 0,
        "data-round": r.number,
        "aria-selected": r.number === state.selectedRound ? "true" : "false",
        onclick: () => selectRound(r.number),
        onkeydown: (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            selectRound(r.number);
          }
        },
      },
      el("td", { class: "round-number" }, `#${r.number}`),
      el(
        "td",
        {},
        badge(STATE_LABEL[r.state] ?? r.state, r.state),
        r.extended ? el("span", { class: "tag", title: "deadline extended once" }, "extended") : null,
      ),
      el("td", { class: "time" }, fmtTime(r.openedAt)),
      el(
        "td",
        { class: "time" },
        r.closedAt !== null
          ? fmtTime(r.closedAt)
          : el("span", { class: "muted", title: "deadline" }, `due ${fmtTime(r.deadlineAt)}`),
      ),
      el("td", { class: "num" }, fmtMs(r.durationMs), running ? el("span", { class: "muted" }, " …") : null),
      el("td", { class: "num" }, fmtMs(r.mergeMs)),
      el(
        "td",
        { class: "num" },
        el("span", { class: quorumMet ? "ok" : "short" }, `${r.accepted} / ${r.cohort.length}`),
        el("span", { class: "muted" }, ` · q${r.quorum}`),
      ),
      el("td", {}, stragglers),
      el("td", { class: "num" }, fmtBytes(r.bytes)),
      el("td", {}, result),
    );
    return row;
  });
  const body = $("rounds").tBodies[0];
  body.replaceChildren(
    ...(rows.length > 0
      ? rows
      : [el("tr", {}, el("td", { colspan: 10, class: "muted empty-row" }, "No rounds yet."))]),
  );
}

function renderClients(round) {
  const body = $("clients").tBodies[0];
  if (round === null) {
    $("clients-title").textContent = "Clients";
    $("clients-note").textContent = "";
    body.replaceChildren(
      el("tr", {}, el("td", { colspan: 7, class: "muted empty-row" }, "No round selected.")),
    );
    return;
  }
  $("clients-title").textContent = `Clients in round #${round.number}`;
  const notes = [`opened ${fmtTime(round.openedAt)}`];
  if (round.quorumAt !== null) notes.push(`quorum at +${fmtMs(round.quorumAt - round.openedAt)}`);
  if (round.closedAt !== null) notes.push(`closed at +${fmtMs(round.closedAt - round.openedAt)}`);
  if (round.mergeMs !== null) notes.push(`merged in ${fmtMs(round.mergeMs)}`);
  notes.push(`${round.accepted} of ${round.cohort.length} submitted`);
  const refused = (round.refusals ?? []).length;
  if (refused > 0) notes.push(`${refused} refused`);
  $("clients-note").textContent = notes.join(" · ");
  const maxWeight = Math.max(0, ...round.submissions.map((s) => s.weight ?? 0));
  const running = round.state === "open";
  const rows = round.submissions.map((s) => {
    const bar = el("span", { class: "weight-bar" });
    bar.style.width = `${maxWeight > 0 && s.weight !== null ? (s.weight / maxWeight) * 100 : 0}%`;
    bar.style.backgroundColor = colorOf(s.clientId);
    return el(
      "tr",
      { class: "client-row", "data-client": s.clientId },
      el("td", {}, swatch(colorOf(s.clientId)), el("span", { class: "client-id" }, s.clientId)),
      el(
        "td",
        {},
        s.excluded
          ? [
              badge("left out of the merge", "excluded"),
              el("div", { class: "reason" }, expandable(s.excluded, "why")),
            ]
          : s.afterQuorum
            ? badge("after quorum", "late")
            : badge("on time", "ok"),
      ),
      el("td", { class: "num", title: new Date(s.receivedAt).toISOString() }, `+${fmtMs(s.offsetMs)}`),
      el("td", { class: "num size", title: `${s.size} bytes` }, fmtBytes(s.size)),
      el("td", { class: "num" }, fmtInt(s.samples)),
      el(
        "td",
        {},
        el(
          "div",
          { class: "weight" },
          el("span", { class: "weight-track" }, bar),
          el(
            "span",
            { class: `weight-value${s.weight === null ? " muted" : ""}` },
            s.weight === null ? (running ? "pending" : "—") : fmtWeight(s.weight),
          ),
        ),
      ),
      el("td", { class: "metrics" }, metricsText(s.metrics)),
    );
  });
  for (const x of round.refusals ?? []) {
    rows.push(
      el(
        "tr",
        { class: "client-row refused", "data-client": x.clientId },
        el("td", {}, swatch(colorOf(x.clientId)), el("span", { class: "client-id" }, x.clientId)),
        el(
          "td",
          {},
          badge("refused", "refused"),
          el("div", { class: "reason" }, el("code", {}, x.reason), " ", expandable(x.message, "why")),
        ),
        el("td", { class: "num", title: new Date(x.at).toISOString() }, `+${fmtMs(x.offsetMs)}`),
        el("td", { class: "num muted" }, "—"),
        el("td", { class: "num muted" }, "—"),
        el("td", { class: "muted" }, "not merged"),
        el("td", { class: "muted" }, "—"),
      ),
    );
  }
  for (const id of round.stragglers) {
    rows.push(
      el(
        "tr",
        { class: `client-row ${running ? "waiting" : "straggler"}`, "data-client": id },
        el("td", {}, swatch(colorOf(id)), el("span", { class: "client-id" }, id)),
        el("td", {}, running ? badge("waiting", "waiting") : badge("missed", "missed")),
        el("td", { class: "num muted" }, "—"),
        el("td", { class: "num muted" }, "—"),
        el("td", { class: "num muted" }, "—"),
        el("td", { class: "muted" }, running ? "—" : "not merged"),
        el("td", { class: "muted" }, "—"),
      ),
    );
  }
  body.replaceChildren(
    ...(rows.length > 0
      ? rows
      : [el("tr", {}, el("td", { colspan: 7, class: "muted empty-row" }, "No clients in this round."))]),
  );
}

/** A submission's reported metrics as `name value` pairs. */
function metricsText(metrics) {
  const names = Object.keys(metrics ?? {}).sort();
  if (names.length === 0) return el("span", { class: "muted" }, "—");
  return names.map((n) => el("span", { class: "metric" }, `${n} ${Number(metrics[n]).toPrecision(4)}`));
}

/** Every enrolled client: connected or not, when last seen, the last round it submitted to. */
function renderClientList(f) {
  const current = f.currentRound?.number ?? null;
  const rows = f.clients.map((c) =>
    el(
      "tr",
      { class: "enrolled-row", "data-client": c.id },
      el("td", {}, swatch(colorOf(c.id)), el("span", { class: "client-id" }, c.id)),
      el("td", {}, c.connected ? badge("connected", "ok") : badge("not connected", "missed")),
      el(
        "td",
        { class: "time" },
        c.lastSeenAt === null ? el("span", { class: "muted" }, "never") : fmtTime(c.lastSeenAt),
      ),
      el(
        "td",
        { class: "num" },
        c.lastRound === null
          ? el("span", { class: "muted" }, "none")
          : [
              `#${c.lastRound}`,
              c.lastRound === current ? el("span", { class: "muted" }, " (current)") : null,
            ],
      ),
    ),
  );
  $("client-list").tBodies[0].replaceChildren(
    ...(rows.length > 0
      ? rows
      : [el("tr", {}, el("td", { colspan: 4, class: "muted empty-row" }, "No clients enrolled."))]),
  );
}

function selectRound(n) {
  const rounds = state.rounds?.rounds ?? [];
  state.selectedRound = n;
  state.followLatest = rounds.length > 0 && rounds[rounds.length - 1].number === n;
  render();
}

// ---------------------------------------------------------------------- start

function start() {
  readHash();
  $("federation").addEventListener("change", (e) => {
    state.federationId = e.target.value;
    state.followLatest = true;
    state.rounds = null;
    refresh();
  });
  $("metric").addEventListener("change", (e) => {
    state.metric = e.target.value;
    if (state.rounds !== null) renderMetricsChart(state.rounds.rounds);
  });
  let resizeTimer;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (state.rounds !== null) {
        renderDurationChart(state.rounds.rounds);
        renderWeightsChart(state.rounds.rounds);
        renderMetricsChart(state.rounds.rounds);
      }
    }, 150);
  });
  refresh();
}

start();
