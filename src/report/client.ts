/**
 * The report page's browser code. `reportHtml` (page.ts) inlines the source text of
 * `reportClient` as `(${reportClient.toString()})();`, so everything it uses is nested inside
 * it: no imports at run time (the ones below are types only), no module-level helpers. The
 * page defines `__name` before it, for the name-keeping calls esbuild (tsx) inserts.
 *
 * It reads the data from `<script type="application/json" id="report-data">`, replays the K
 * archives from the seeds and the children in commit order (`seq`), and draws: heatmaps with
 * a generation slider (`#generation`), curves (uPlot, the global `uPlot` the page inlines),
 * the final table, the lineage of the aggregate, the time per child and the config. In live
 * mode (`<body data-live="1">`) it fetches `./data.json` and refetches it on every message of
 * the `EventSource("./events")`, re-rendering in place.
 */
import type uPlot from "uplot";
import type { ReportChild, ReportData, ReportSeed } from "./data.ts";

export function reportClient(): void {
  type Individual = ReportSeed | ReportChild;
  type Timings = NonNullable<ReportChild["timings"]>;
  type StepKey = keyof Timings;
  /** A heatmap: an archive's grid, strip or one 2-D projection of it. */
  interface View {
    archive: number;
    /** Positions (into the archive's BC axes) shown on x and y; y null for a strip. */
    px: number | null;
    py: number | null;
    /** Set when the view projects more than two BC axes onto (px, py). */
    projection: string | null;
    cells: HTMLElement[];
  }
  interface Shown {
    id: number;
    q: number;
    count: number;
  }

  const doc = document;
  const win = window as unknown as Window & { uPlot?: typeof uPlot; cycleqdReport?: unknown };
  const PALETTE = [
    "#4e79a7",
    "#e15759",
    "#59a14f",
    "#f28e2b",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
  ];
  const VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
  const PARTS: { key: StepKey | "other"; label: string; color: string }[] = [
    { key: "select", label: "select", color: "#bab0ac" },
    { key: "crossover", label: "crossover", color: "#9c755f" },
    { key: "mutate", label: "mutate", color: "#b07aa1" },
    { key: "materialise", label: "materialise", color: "#4e79a7" },
    { key: "load", label: "load", color: "#76b7b2" },
    { key: "generate", label: "generate", color: "#f28e2b" },
    { key: "grade", label: "grade", color: "#59a14f" },
    { key: "other", label: "evaluate, other", color: "#edc948" },
    { key: "tell", label: "tell", color: "#e15759" },
  ];

  let data = readEmbedded();
  let kids: ReportChild[] = [];
  let byId = new Map<number, Individual>();
  let pos = 0;
  let follow = true;
  let views: View[] = [];
  let panels: HTMLElement[] = [];
  let charts: { chart: uPlot; box: HTMLElement }[] = [];
  let renders = 0;
  /** The last mouse move over the heatmaps, to refresh the tooltip when the cells change. */
  let hover: MouseEvent | null = null;

  // ---------------------------------------------------------------- small helpers

  function readEmbedded(): ReportData {
    const el = doc.getElementById("report-data");
    return JSON.parse(el?.textContent ?? "{}") as ReportData;
  }

  function h(
    tag: string,
    attrs?: Record<string, string | number | null | undefined> | null,
    ...content: (Node | string | null | undefined | false)[]
  ): HTMLElement {
    const el = doc.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined) continue;
        if (k === "class") el.className = String(v);
        else el.setAttribute(k, String(v));
      }
    }
    for (const c of content) {
      if (c === null || c === undefined || c === false) continue;
      el.append(typeof c === "string" ? doc.createTextNode(c) : c);
    }
    return el;
  }

  function byIdEl(id: string): HTMLElement {
    const el = doc.getElementById(id);
    if (!el) throw new Error(`report page: no #${id}`);
    return el;
  }

  function num(x: number | null | undefined, digits = 3): string {
    if (x === null || x === undefined || !Number.isFinite(x)) return "—";
    return x.toFixed(digits);
  }

  function ms(x: number | null | undefined): string {
    if (x === null || x === undefined || !Number.isFinite(x)) return "—";
    if (x >= 60000) return `${(x / 60000).toFixed(1)} min`;
    if (x >= 1000) return `${(x / 1000).toFixed(2)} s`;
    if (x >= 10) return `${x.toFixed(0)} ms`;
    return `${x.toFixed(2)} ms`;
  }

  function mean(xs: number[]): number {
    return xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : Number.NaN;
  }

  function skillColor(k: number): string {
    return PALETTE[k % PALETTE.length];
  }

  function hexRgb(hex: string): [number, number, number] {
    const v = Number.parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }

  function viridis(t: number): string {
    const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
    const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const f = x - i;
    const a = hexRgb(VIRIDIS[i]);
    const b = hexRgb(VIRIDIS[i + 1]);
    const c = a.map((v, j) => Math.round(v + (b[j] - v) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  function skill(k: number): string {
    return data.skills[k] ?? `task ${k}`;
  }

  function isChild(ind: Individual): ind is ReportChild {
    return "seq" in ind;
  }

  /** The archive's BC axes: the tasks other than k, in increasing order. */
  function bcAxes(k: number): number[] {
    return data.skills.map((_, j) => j).filter((j) => j !== k);
  }

  /** Quality domain of archive k for the colour scale: its task's bin range within [0, 1]. */
  function domain(k: number): [number, number] {
    const r = data.ranges?.[k];
    let lo = r ? Math.max(0, r[0]) : 0;
    let hi = r ? Math.min(1, r[1]) : 1;
    if (!(hi > lo)) {
      lo = 0;
      hi = 1;
    }
    return [lo, hi];
  }

  function binEdges(task: number, b: number): [number, number] | null {
    const r = data.ranges?.[task];
    if (!r) return null;
    const w = (r[1] - r[0]) / data.bins;
    return [r[0] + b * w, r[0] + (b + 1) * w];
  }

  function binText(task: number, b: number): string {
    const e = binEdges(task, b);
    if (!e) return `${skill(task)} bin ${b}`;
    if (data.bins === 1) return `${skill(task)} any`;
    if (b === 0) return `${skill(task)} < ${num(e[1])}`;
    if (b === data.bins - 1) return `${skill(task)} ≥ ${num(e[0])}`;
    return `${skill(task)} ${num(e[0])}–${num(e[1])}`;
  }

  /** Flat row-major cell index → bins, one per BC axis. */
  function decode(cell: number, dims: number): number[] {
    const out = new Array<number>(dims).fill(0);
    let c = cell;
    for (let d = dims - 1; d >= 0; d--) {
      out[d] = c % data.bins;
      c = Math.floor(c / data.bins);
    }
    return out;
  }

  function mutationText(c: ReportChild): string {
    const m = c.mutation;
    if (m.kind === "svd") {
      return `SVD mutation along ${skill(m.task)}'s expert (r mean ${num(m.summary.mean)}, max ${num(m.summary.max)}, ${m.summary.count} components)`;
    }
    if (m.kind === "gaussian") return `Gaussian mutation (σ ${m.sigma}, seed ${m.seed})`;
    return "no mutation";
  }

  function scoresText(ind: Individual, bold?: number): (Node | string)[] {
    const out: (Node | string)[] = [];
    ind.scores.forEach((s, j) => {
      if (j > 0) out.push(" · ");
      const t = `${skill(j)} ${num(s)}`;
      out.push(j === bold ? h("b", null, t) : t);
    });
    return out;
  }

  function individualLabel(ind: Individual): string {
    return isChild(ind)
      ? `#${ind.id} · generation ${ind.g} (commit ${ind.seq}) · active task ${skill(ind.task)}`
      : `#${ind.id} · seed: the ${ind.skill} expert`;
  }

  function parentsText(c: ReportChild): string {
    const [a, b] = c.parents;
    const [wa, wb] = c.weights;
    return a === b
      ? `parent #${a} (w ${num(wa)} + ${num(wb)})`
      : `parents #${a} (w ${num(wa)}) × #${b} (w ${num(wb)})`;
  }

  // ---------------------------------------------------------------- the replay

  /** Cell → elite id of every archive after the seeds and the first `s` committed children. */
  function replay(s: number): Map<number, number>[] {
    const K = data.skills.length;
    const archives = Array.from({ length: K }, () => new Map<number, number>());
    const offer = (ind: Individual) => {
      for (let k = 0; k < K; k++) {
        const o = ind.outcomes[k];
        const cell = ind.cells[k];
        if (o === undefined || cell === undefined || o === "rejected") continue;
        archives[k].set(cell, ind.id);
      }
    };
    for (const seed of [...data.seeds].sort((a, b) => a.id - b.id)) offer(seed);
    for (let i = 0; i < s && i < kids.length; i++) offer(kids[i]);
    return archives;
  }

  function quality(id: number, k: number): number {
    return byId.get(id)?.scores[k] ?? Number.NaN;
  }

  /**
   * The best elite of each archive, as the aggregate picks it: the highest quality, then the
   * highest mean score over all tasks, then the lowest id.
   */
  function bestElites(archives: Map<number, number>[]): (number | null)[] {
    const mean = (id: number) => {
      const s = byId.get(id)?.scores ?? [];
      return s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
    };
    return archives.map((a, k) => {
      let best: number | null = null;
      for (const id of a.values()) {
        if (best === null) {
          best = id;
          continue;
        }
        const dq = quality(id, k) - quality(best, k);
        const dm = mean(id) - mean(best);
        if (dq > 0 || (dq === 0 && (dm > 0 || (dm === 0 && id < best)))) best = id;
      }
      return best;
    });
  }

  // ---------------------------------------------------------------- heatmaps

  function buildHeatmaps(): void {
    const root = byIdEl("heatmaps");
    root.replaceChildren();
    views = [];
    panels = [];
    const K = data.skills.length;
    if (!data.ranges) {
      root.append(
        h(
          "p",
          { class: "empty-note" },
          "Nothing yet: the seeds are not scored, so the archives and their bin ranges do not exist.",
        ),
      );
      return;
    }
    const dims = K - 1;
    const G = data.bins;
    root.append(
      h(
        "div",
        { class: "hm-caption" },
        h("span", { id: "heatmap-caption" }),
        h("span", { class: "cell legend-empty" }),
        "empty cell",
        h("span", { class: "cell legend-fresh" }),
        "entered at this step",
      ),
    );
    const row = h("div", { class: "hm-row" });
    root.append(row);
    for (let k = 0; k < K; k++) {
      const axes = bcAxes(k);
      const panel = h(
        "div",
        { class: "hm-panel", "data-archive-panel": k, style: `--skill:${skillColor(k)}` },
        h(
          "div",
          { class: "hm-title" },
          h("span", { class: "swatch", style: `background:${skillColor(k)}` }),
          `Archive ${k}: quality = ${skill(k)}`,
          h("span", { class: "active-tag" }, "active task"),
        ),
      );
      const maps = h("div", { class: "hm-maps" });
      panel.append(maps);
      if (dims <= 1) {
        maps.append(gridView(k, axes, 0, null, null, dims === 0 ? 1 : G));
      } else if (dims === 2) {
        maps.append(gridView(k, axes, 0, 1, null, G));
      } else {
        for (let p = 0; p < dims; p++) {
          for (let q = p + 1; q < dims; q++) {
            const hidden = axes.filter((_, i) => i !== p && i !== q).map(skill);
            maps.append(gridView(k, axes, p, q, `${axes[p]}-${axes[q]}`, G, hidden));
          }
        }
      }
      panel.append(legend(k));
      panels.push(panel);
      row.append(panel);
    }
  }

  /** One grid (py set) or strip (py null) of archive k; appends its View. */
  function gridView(
    k: number,
    axes: number[],
    px: number | null,
    py: number | null,
    projection: string | null,
    n: number,
    hidden: string[] = [],
  ): HTMLElement {
    const G = data.bins;
    const K = data.skills.length;
    const size = Math.max(
      6,
      Math.min(
        py === null ? 32 : 24,
        Math.floor((projection ? (K > 4 ? 120 : 140) : py === null ? 420 : 270) / Math.max(1, n)),
      ),
    );
    const cols = py === null ? n : G;
    const rows = py === null ? 1 : G;
    const grid = h("div", {
      class: "hm-grid",
      style: `grid-template-columns:repeat(${cols},${size}px);grid-template-rows:repeat(${rows},${py === null ? Math.max(size, 22) : size}px)`,
    });
    const cells: HTMLElement[] = new Array(py === null ? n : G * G);
    for (let r = 0; r < rows; r++) {
      for (let x = 0; x < cols; x++) {
        const idx = py === null ? x : x * G + (G - 1 - r);
        const el = h("div", { class: "cell", "data-archive": k, "data-cell": idx });
        if (projection) el.setAttribute("data-projection", projection);
        cells[idx] = el;
        grid.append(el);
      }
    }
    views.push({ archive: k, px, py, projection, cells });
    const xTask = px === null ? null : axes[px];
    const yTask = py === null ? null : axes[py];
    const ticks = (task: number | null, vertical: boolean) => {
      const box = h("div", { class: vertical ? "ticks-y" : "ticks-x" });
      const r = task === null ? null : data.ranges?.[task];
      if (!r) return box;
      for (const i of [0, Math.round(G / 2), G]) {
        const v = r[0] + (i * (r[1] - r[0])) / G;
        const at = `${((i / G) * 100).toFixed(2)}%`;
        box.append(h("span", { style: vertical ? `bottom:${at}` : `left:${at}` }, num(v, 2)));
      }
      return box;
    };
    const fig = h(
      "div",
      { class: `hm-fig${py === null ? " strip" : ""}` },
      h("div", { class: "ylabel" }, yTask === null ? "" : `${skill(yTask)} score`),
      py === null ? h("div", null) : ticks(yTask, true),
      grid,
      h("div", null),
      h("div", null),
      ticks(xTask, false),
      h("div", null),
      h("div", null),
      h("div", { class: "xlabel" }, xTask === null ? "(one cell)" : `${skill(xTask)} score`),
    );
    if (!projection) return fig;
    return h(
      "div",
      { class: "hm-proj" },
      fig,
      h("div", { class: "proj-note" }, `best over ${hidden.join(", ")}`),
    );
  }

  function legend(k: number): HTMLElement {
    const [lo, hi] = domain(k);
    return h(
      "div",
      { class: "legend" },
      h("span", null, num(lo, 2)),
      h("span", {
        class: "ramp",
        style: `background:linear-gradient(to right,${VIRIDIS.join(",")})`,
      }),
      h("span", null, num(hi, 2)),
      h("span", { class: "legend-q" }, `quality: ${skill(k)} score`),
    );
  }

  function paint(): void {
    const K = data.skills.length;
    const slider = doc.getElementById("generation") as HTMLInputElement | null;
    const label = doc.getElementById("generation-label");
    const active = doc.getElementById("active-task");
    const child = pos > 0 ? kids[pos - 1] : null;
    if (label) label.textContent = `generation ${pos} / ${data.generations}`;
    if (active) {
      active.replaceChildren(
        child
          ? h(
              "span",
              null,
              "active task: ",
              h("b", { style: `color:${skillColor(child.task)}` }, skill(child.task)),
              ` · child #${child.id} (generation ${child.g}, commit ${child.seq})`,
            )
          : data.children.length === 0 && data.seeds.length === 0
            ? "no individuals yet"
            : "seeds only",
      );
    }
    if (slider && Number(slider.value) !== pos) slider.value = String(pos);
    const archives = replay(pos);
    const dims = K - 1;
    for (const view of views) {
      const k = view.archive;
      const shown = new Map<number, Shown>();
      for (const [cell, id] of archives[k]) {
        let idx = cell;
        if (view.projection && view.px !== null && view.py !== null) {
          const b = decode(cell, dims);
          idx = b[view.px] * data.bins + b[view.py];
        }
        const q = quality(id, k);
        const prev = shown.get(idx);
        if (!prev) shown.set(idx, { id, q, count: 1 });
        else {
          prev.count++;
          if (q > prev.q) {
            prev.id = id;
            prev.q = q;
          }
        }
      }
      let fresh = -1;
      if (child && child.outcomes[k] !== undefined && child.outcomes[k] !== "rejected") {
        fresh = child.cells[k];
        if (view.projection && view.px !== null && view.py !== null) {
          const b = decode(fresh, dims);
          fresh = b[view.px] * data.bins + b[view.py];
        }
      }
      const [lo, hi] = domain(k);
      view.cells.forEach((el, idx) => {
        const e = shown.get(idx);
        if (e) {
          el.style.background = viridis((e.q - lo) / (hi - lo));
          el.setAttribute("data-filled", "1");
          el.setAttribute("data-id", String(e.id));
          if (view.projection) el.setAttribute("data-count", String(e.count));
          else el.removeAttribute("data-count");
        } else {
          el.style.background = "";
          el.removeAttribute("data-filled");
          el.removeAttribute("data-id");
          el.removeAttribute("data-count");
        }
        el.classList.toggle("fresh", idx === fresh);
      });
    }
    panels.forEach((p, k) => {
      p.classList.toggle("active", child !== null && child.task === k);
    });
    const caption = doc.getElementById("heatmap-caption");
    if (caption) {
      const filled = archives.map((a, k) => `${skill(k)} ${a.size}`).join(" · ");
      caption.textContent = `${pos === 0 ? "Seeds only" : `After ${pos} of ${kids.length} children committed (run: ${data.generations} generations)`}. Filled cells: ${filled} of ${Math.round(data.bins ** (K - 1))} each.`;
    }
    for (const { chart } of charts) chart.redraw(false, false);
    const tip = doc.getElementById("tooltip");
    if (tip && !tip.hidden && hover) showTooltip(hover);
  }

  function showTooltip(ev: MouseEvent): void {
    const tip = byIdEl("tooltip");
    hover = ev;
    const target = ev.target as HTMLElement | null;
    const cell = target?.closest?.("[data-archive]") as HTMLElement | null;
    if (!cell?.hasAttribute("data-cell")) {
      tip.hidden = true;
      return;
    }
    const k = Number(cell.getAttribute("data-archive"));
    const idx = Number(cell.getAttribute("data-cell"));
    const view = views.find((v) => v.archive === k && v.cells[idx] === cell);
    if (!view) {
      tip.hidden = true;
      return;
    }
    const axes = bcAxes(k);
    const where: string[] = [];
    if (view.py === null) {
      if (view.px !== null) where.push(binText(axes[view.px], idx));
    } else if (view.px !== null) {
      where.push(binText(axes[view.px], Math.floor(idx / data.bins)));
      where.push(binText(axes[view.py], idx % data.bins));
    }
    const lines: (Node | string)[] = [
      h("div", { class: "tip-head" }, `Archive ${k} (${skill(k)}) · cell ${idx}`),
      h("div", { class: "tip-dim" }, where.join(" · ")),
    ];
    const idAttr = cell.getAttribute("data-id");
    const ind = idAttr === null ? undefined : byId.get(Number(idAttr));
    if (!ind) {
      lines.push(h("div", null, "empty"));
    } else {
      if (view.projection) {
        lines.push(
          h(
            "div",
            { class: "tip-dim" },
            `${cell.getAttribute("data-count")} elite(s) over the hidden axis; the best:`,
          ),
        );
      }
      lines.push(h("div", { class: "tip-id" }, individualLabel(ind)));
      lines.push(h("div", null, ...scoresText(ind, k)));
      if (isChild(ind)) {
        lines.push(h("div", null, parentsText(ind)));
        lines.push(h("div", null, mutationText(ind)));
      }
    }
    tip.replaceChildren(...lines);
    tip.hidden = false;
    const pad = 14;
    const w = tip.offsetWidth;
    const ht = tip.offsetHeight;
    let x = ev.clientX + pad;
    let y = ev.clientY + pad;
    if (x + w > win.innerWidth - 4) x = Math.max(4, ev.clientX - pad - w);
    if (y + ht > win.innerHeight - 4) y = Math.max(4, ev.clientY - pad - ht);
    tip.style.left = `${x}px`;
    tip.style.top = `${y}px`;
  }

  // ---------------------------------------------------------------- curves (uPlot)

  function destroyCharts(): void {
    for (const { chart } of charts) chart.destroy();
    charts = [];
  }

  /** Draws the active task of every child as a strip along the bottom, and the slider. */
  function marks(u: uPlot): void {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const px = win.uPlot?.pxRatio ?? 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    const band = 6 * px;
    for (let i = 0; i < kids.length; i++) {
      const x = i + 1;
      const x0 = u.valToPos(x - 0.5, "x", true);
      const x1 = u.valToPos(x + 0.5, "x", true);
      ctx.fillStyle = skillColor(kids[i].task);
      ctx.fillRect(x0, top + height - band, Math.max(1, x1 - x0), band);
    }
    const xp = u.valToPos(pos, "x", true);
    ctx.strokeStyle = "#333";
    ctx.lineWidth = px;
    ctx.setLineDash([4 * px, 3 * px]);
    ctx.beginPath();
    ctx.moveTo(xp, top);
    ctx.lineTo(xp, top + height);
    ctx.stroke();
    ctx.restore();
  }

  function lineChart(
    box: HTMLElement,
    title: string,
    xs: number[],
    series: { label: string; color: string; values: (number | null)[]; width?: number }[],
    fmt: (v: number) => string,
  ): void {
    const U = win.uPlot;
    if (!U) {
      box.append(h("p", { class: "empty-note" }, "uPlot is missing from this page."));
      return;
    }
    const opts: uPlot.Options = {
      title,
      width: Math.max(240, box.clientWidth || 360),
      height: 230,
      scales: { x: { time: false } },
      axes: [
        { label: "children committed", labelSize: 18, size: 32 },
        { values: (_u, vals) => vals.map((v) => (v === null ? "" : fmt(v))), size: 52 },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [
        { label: "commit", value: (_u, v) => (v === null ? "—" : String(v)) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          points: { show: xs.length < 40, size: 4 },
          value: (_u: uPlot, v: number | null) => (v === null ? "—" : fmt(v)),
        })),
      ],
      hooks: { draw: [marks] },
    };
    const chart = new U(opts, [xs, ...series.map((s) => s.values)] as uPlot.AlignedData, box);
    charts.push({ chart, box });
  }

  function buildCurves(): void {
    const root = byIdEl("curves");
    destroyCharts();
    root.replaceChildren();
    const K = data.skills.length;
    if (!data.ranges || kids.length === 0) {
      root.append(
        h("p", { class: "empty-note" }, "No children yet: the curves start with the first child."),
      );
      return;
    }
    const seedsOnly = replay(0);
    const cellsPer = data.bins ** (K - 1);
    const xs = [0, ...kids.map((_, i) => i + 1)];
    const metric = (
      k: number,
      pick: (m: ReportChild["metrics"][number]) => number | null,
      start: number | null,
    ): (number | null)[] => [start, ...kids.map((c) => (c.metrics[k] ? pick(c.metrics[k]) : null))];
    const start = seedsOnly.map((a, k) => {
      let qd = 0;
      let best: number | null = null;
      for (const id of a.values()) {
        const q = quality(id, k);
        qd += q;
        if (best === null || q > best) best = q;
      }
      return { coverage: a.size / cellsPer, qd, best };
    });
    const grid = h("div", { class: "charts" });
    root.append(grid);
    const defs: {
      title: string;
      pick: (m: ReportChild["metrics"][number]) => number | null;
      start: (k: number) => number | null;
      fmt: (v: number) => string;
    }[] = [
      {
        title: "Best quality",
        pick: (m) => m.best,
        start: (k) => start[k].best,
        fmt: (v) => v.toFixed(3),
      },
      {
        title: "Coverage",
        pick: (m) => m.coverage,
        start: (k) => start[k].coverage,
        fmt: (v) => `${(v * 100).toFixed(1)}%`,
      },
      {
        title: "QD score",
        pick: (m) => m.qdScore,
        start: (k) => start[k].qd,
        fmt: (v) => v.toFixed(2),
      },
    ];
    for (const d of defs) {
      const box = h("div", { class: "chart" });
      grid.append(box);
      lineChart(
        box,
        d.title,
        xs,
        data.skills.map((name, k) => ({
          label: `A${k} ${name}`,
          color: skillColor(k),
          values: metric(k, d.pick, d.start(k)),
        })),
        d.fmt,
      );
    }
    root.append(activeKey("the strip along the bottom: the active task of each child"));
  }

  function activeKey(text: string): HTMLElement {
    return h(
      "div",
      { class: "key" },
      `${text}: `,
      ...data.skills.flatMap((name, k) => [
        h("span", { class: "swatch", style: `background:${skillColor(k)}` }),
        `${name} `,
      ]),
      "· dashed line: the slider's generation",
    );
  }

  // ---------------------------------------------------------------- final table

  function buildFinals(): void {
    const root = byIdEl("finals");
    root.replaceChildren();
    const K = data.skills.length;
    const final = replay(kids.length);
    const best = data.ranges ? bestElites(final) : [];
    interface Row {
      name: string;
      note: string;
      opt: number[] | null;
      test: number[] | null;
      kind: string;
    }
    const rows: Row[] = [];
    for (const s of [...data.seeds].sort((a, b) => a.id - b.id)) {
      rows.push({
        name: `seed #${s.id}: ${s.skill} expert`,
        note: "",
        opt: s.scores,
        test: null,
        kind: "seed",
      });
    }
    for (const f of data.finals) {
      const src = f.sources.map(
        (id, i) => `#${id}${f.beta?.[i] !== undefined ? ` (β ${num(f.beta[i])})` : ""}`,
      );
      rows.push({
        name: f.name,
        note: `from ${src.join(", ")}`,
        opt: f.opt,
        test: f.test,
        kind: "final",
      });
    }
    best.forEach((id, k) => {
      if (id === null) return;
      const ind = byId.get(id);
      if (!ind) return;
      rows.push({
        name: `best in archive ${k} (${skill(k)})`,
        note: individualLabel(ind),
        opt: ind.scores,
        test: null,
        kind: "elite",
      });
    });
    // Hook for baseline merges (linear, task arithmetic, TIES, DARE): ReportData has no
    // `baselines` yet; when it gains one shaped { name, opt, test } per merge, rows appear.
    const baselines = (data as unknown as { baselines?: unknown }).baselines;
    if (Array.isArray(baselines)) {
      for (const b of baselines as { name?: unknown; opt?: unknown; test?: unknown }[]) {
        const vec = (v: unknown) => (Array.isArray(v) ? (v as number[]) : null);
        rows.push({
          name: `baseline: ${String(b.name)}`,
          note: "",
          opt: vec(b.opt),
          test: vec(b.test),
          kind: "baseline",
        });
      }
    }
    if (rows.length === 0) {
      root.append(h("p", { class: "empty-note" }, "No scores yet."));
      return;
    }
    const hasTest = rows.some((r) => r.test);
    const splits: ("opt" | "test")[] = hasTest ? ["opt", "test"] : ["opt"];
    const colMax = new Map<string, number>();
    for (const sp of splits) {
      for (let j = 0; j <= K; j++) {
        let m = -Infinity;
        for (const r of rows) {
          const v = r[sp];
          if (!v) continue;
          const x = j < K ? v[j] : mean(v);
          if (x > m) m = x;
        }
        colMax.set(`${sp}${j}`, m);
      }
    }
    const head1 = h("tr", null, h("th", { rowspan: 2 }, "model"));
    const head2 = h("tr");
    for (const sp of splits) {
      head1.append(
        h(
          "th",
          { colspan: K + 1, class: "split" },
          sp === "opt" ? "opt split (search)" : "test split (held out)",
        ),
      );
      for (let j = 0; j < K; j++) {
        head2.append(h("th", { class: j === 0 ? "numh first" : "numh" }, skill(j)));
      }
      head2.append(h("th", { class: "numh" }, "mean"));
    }
    const body = h("tbody");
    for (const r of rows) {
      const tr = h(
        "tr",
        { class: `row-${r.kind}` },
        h("td", null, h("div", null, r.name), r.note ? h("div", { class: "dim" }, r.note) : null),
      );
      for (const sp of splits) {
        const v = r[sp];
        if (!v) {
          tr.append(
            h(
              "td",
              { colspan: K + 1, class: "dim center first" },
              r.kind === "final" ? "not evaluated" : sp === "test" ? "—" : "not recorded",
            ),
          );
          continue;
        }
        for (let j = 0; j <= K; j++) {
          const x = j < K ? v[j] : mean(v);
          const top = x === colMax.get(`${sp}${j}`);
          const cls = `num${top ? " top" : ""}${j === K ? " mean" : ""}${j === 0 ? " first" : ""}`;
          tr.append(h("td", { class: cls }, num(x)));
        }
      }
      body.append(tr);
    }
    root.append(h("table", { class: "tbl" }, h("thead", null, head1, head2), body));
    root.append(
      h(
        "p",
        { class: "dim" },
        "Pass rates in [0, 1]; bold: the best of each column. Seeds and elites are scored on the opt split only; the final models on test when the run evaluated them. Baseline merges appear here when the run records them.",
      ),
    );
  }

  // ---------------------------------------------------------------- lineage

  function buildLineage(): void {
    const root = byIdEl("lineage");
    root.replaceChildren();
    const agg = data.finals.find((f) => f.name === "aggregate") ?? data.finals[0];
    let roots: { id: number; note: string }[];
    if (agg) {
      root.append(
        h(
          "p",
          { class: "dim" },
          `The ${agg.name} model's elites, back to the seed experts (ids 0–${data.skills.length - 1}).`,
        ),
      );
      roots = agg.sources.map((id, i) => ({
        id,
        note: agg.beta?.[i] !== undefined ? `β ${num(agg.beta[i])}` : "",
      }));
    } else if (data.ranges) {
      root.append(
        h(
          "p",
          { class: "dim" },
          "No final models yet: the lineage of each archive's best elite now (what the aggregate would merge).",
        ),
      );
      roots = bestElites(replay(kids.length)).flatMap((id, k) =>
        id === null ? [] : [{ id, note: `best in archive ${k} (${skill(k)})` }],
      );
    } else {
      root.append(h("p", { class: "empty-note" }, "Nothing yet."));
      return;
    }
    const shown = new Set<number>();
    const node = (id: number, note: string, depth: number): HTMLElement => {
      const ind = byId.get(id);
      const li = h("li");
      if (!ind) {
        li.append(h("span", { class: "dim" }, `#${id} (not in this report)`));
        return li;
      }
      const tag = h(
        "span",
        { class: isChild(ind) ? "lin-id" : "lin-id seed" },
        isChild(ind) ? `#${id}` : `#${id} seed: ${ind.skill} expert`,
      );
      const noteEl = note ? h("span", { class: "lin-note" }, note) : null;
      if (shown.has(id)) {
        li.append(
          tag,
          noteEl ?? "",
          " ",
          h("a", { class: "dim", href: `#lin-${id}` }, "(shown above)"),
        );
        return li;
      }
      shown.add(id);
      li.id = `lin-${id}`;
      const summary = h("span", { class: "lin-line" }, tag, noteEl ?? "");
      const detail = h("div", { class: "lin-detail" }, ...scoresText(ind));
      if (!isChild(ind)) {
        li.append(summary, detail);
        return li;
      }
      summary.append(
        h("span", { class: "dim" }, ` generation ${ind.g} · active task `),
        h("b", { style: `color:${skillColor(ind.task)}` }, skill(ind.task)),
      );
      detail.append(h("br"), `${parentsText(ind)} · ${mutationText(ind)}`);
      const sub = h("ul");
      const [a, b] = ind.parents;
      sub.append(node(a, `w ${num(ind.weights[0])}`, depth + 1));
      if (b !== a) sub.append(node(b, `w ${num(ind.weights[1])}`, depth + 1));
      const det = h(
        "details",
        depth < 2 ? { open: "" } : null,
        h("summary", null, summary),
        detail,
        sub,
      );
      li.append(det);
      return li;
    };
    const ul = h("ul", { class: "lineage" });
    for (const r of roots) ul.append(node(r.id, r.note, 0));
    root.append(ul);
  }

  // ---------------------------------------------------------------- time per child

  function partValue(t: Timings, key: StepKey | "other"): number {
    if (key === "other") {
      if (t.evaluate === undefined) return 0;
      const inside = (t.materialise ?? 0) + (t.load ?? 0) + (t.generate ?? 0) + (t.grade ?? 0);
      return Math.max(0, t.evaluate - inside);
    }
    return t[key] ?? 0;
  }

  function total(t: Timings): number {
    return PARTS.reduce((s, p) => s + partValue(t, p.key), 0);
  }

  function buildTimings(): void {
    const root = byIdEl("timings");
    root.replaceChildren();
    const timed = kids.filter((c) => c.timings);
    if (timed.length === 0) {
      root.append(
        h(
          "p",
          { class: "empty-note" },
          kids.length === 0 ? "No children yet." : "Time per child: not recorded.",
        ),
      );
      return;
    }
    const means = PARTS.map((p) => mean(timed.map((c) => partValue(c.timings as Timings, p.key))));
    const sum = means.reduce((s, v) => s + v, 0);
    const bar = h("div", { class: "stack" });
    PARTS.forEach((p, i) => {
      const share = sum > 0 ? means[i] / sum : 0;
      if (share <= 0) return;
      bar.append(
        h(
          "div",
          {
            style: `width:${(share * 100).toFixed(3)}%;background:${p.color}`,
            title: `${p.label}: ${ms(means[i])}`,
          },
          share > 0.08 ? p.label : "",
        ),
      );
    });
    const evalMean = mean(
      timed.map((c) => c.timings?.evaluate ?? Number.NaN).filter(Number.isFinite),
    );
    const body = h("tbody");
    PARTS.forEach((p, i) => {
      body.append(
        h(
          "tr",
          null,
          h("td", null, h("span", { class: "swatch", style: `background:${p.color}` }), p.label),
          h("td", { class: "num" }, ms(means[i])),
          h("td", { class: "num" }, sum > 0 ? `${((means[i] / sum) * 100).toFixed(1)}%` : "—"),
        ),
      );
    });
    body.append(
      h(
        "tr",
        { class: "dim" },
        h("td", null, "evaluate (materialise … grade, as the worker saw it)"),
        h("td", { class: "num" }, ms(evalMean)),
        h("td", null, ""),
      ),
      h(
        "tr",
        { class: "total" },
        h("td", null, "child, in all"),
        h("td", { class: "num" }, ms(sum)),
        h("td", { class: "num" }, "100%"),
      ),
    );
    const table = h(
      "table",
      { class: "tbl small" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", null, "step"),
          h("th", { class: "numh" }, "mean"),
          h("th", { class: "numh" }, "share"),
        ),
      ),
      body,
    );
    root.append(
      h(
        "p",
        { class: "dim" },
        `Mean over ${timed.length} of ${kids.length} children${timed.length < kids.length ? " (the others recorded no times)" : ""}; "evaluate, other" is the evaluation's time outside materialise, load, generate and grade.`,
      ),
      bar,
    );
    const side = h("div", { class: "timing-row" }, table);
    const box = h("div", { class: "chart" });
    side.append(box);
    root.append(side);
    const xs = kids.map((_, i) => i + 1);
    const sec = (f: (t: Timings) => number) =>
      kids.map((c) => (c.timings ? f(c.timings) / 1000 : null));
    lineChart(
      box,
      "Time per child (s)",
      xs,
      [
        { label: "total", color: "#222", values: sec(total), width: 2 },
        ...PARTS.filter((p) => ["materialise", "load", "generate", "grade"].includes(p.key)).map(
          (p) => ({
            label: p.label,
            color: p.color,
            values: sec((t) => partValue(t, p.key)),
          }),
        ),
      ],
      (v) => v.toFixed(v < 10 ? 1 : 0),
    );
  }

  // ---------------------------------------------------------------- header, config

  function buildHeader(): void {
    const root = byIdEl("summary");
    const K = data.skills.length;
    const ranges = data.ranges
      ? data.skills
          .map((s, k) => `${s} ${num(data.ranges?.[k][0], 3)}–${num(data.ranges?.[k][1], 3)}`)
          .join(", ")
      : "not yet (seeds not scored)";
    root.replaceChildren(
      h("span", { class: `status status-${data.status}` }, data.status),
      h("span", null, `run ${data.name}`),
      h("span", null, `${kids.length} of ${data.generations} children`),
      h(
        "span",
        null,
        `K = ${K} skills: `,
        ...data.skills.flatMap((s, k) => [
          h("span", { class: "swatch", style: `background:${skillColor(k)}` }),
          `${s} `,
        ]),
      ),
      h(
        "span",
        null,
        `G = ${data.bins} bins per axis (${Math.round(data.bins ** (K - 1))} cells per archive)`,
      ),
      h("span", null, `bin ranges: ${ranges}`),
    );
  }

  function buildConfig(): void {
    byIdEl("config").replaceChildren(
      h("pre", { class: "config" }, JSON.stringify(data.config, null, 2)),
    );
  }

  // ---------------------------------------------------------------- render, slider, live

  function setData(next: ReportData): void {
    data = next;
    kids = [...data.children].sort((a, b) => a.seq - b.seq);
    byId = new Map<number, Individual>();
    for (const s of data.seeds) byId.set(s.id, s);
    for (const c of kids) byId.set(c.id, c);
  }

  function renderSection(name: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      const el = doc.getElementById(name);
      el?.replaceChildren(
        h("p", { class: "error" }, `This part failed to draw: ${(e as Error).message}`),
      );
      console.error(e);
    }
  }

  function render(next?: ReportData): void {
    if (next) setData(next);
    const slider = doc.getElementById("generation") as HTMLInputElement | null;
    const n = kids.length;
    pos = follow ? n : Math.min(pos, n);
    if (slider) {
      slider.max = String(n);
      slider.disabled = !data.ranges;
      slider.value = String(pos);
    }
    const scroll = win.scrollY;
    renderSection("summary", buildHeader);
    renderSection("heatmaps", buildHeatmaps);
    renderSection("curves", buildCurves);
    renderSection("finals", buildFinals);
    renderSection("lineage", buildLineage);
    renderSection("timings", buildTimings);
    renderSection("config", buildConfig);
    // A chart is sized when it is made, before its siblings share the row; size them again.
    fitCharts();
    renderSection("heatmaps", paint);
    if (win.scrollY !== scroll) win.scrollTo(0, scroll);
    renders++;
    doc.documentElement.setAttribute("data-renders", String(renders));
    doc.documentElement.setAttribute("data-ready", "1");
  }

  function setGeneration(s: number): void {
    pos = Math.max(0, Math.min(kids.length, Math.round(s)));
    follow = pos === kids.length;
    paint();
  }

  function setLive(text: string, cls: string): void {
    const el = doc.getElementById("live-status");
    if (!el) return;
    el.hidden = false;
    el.textContent = text;
    el.className = `live ${cls}`;
  }

  function startLive(): void {
    let inFlight = false;
    let again = false;
    const refresh = async (): Promise<void> => {
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      try {
        do {
          again = false;
          const res = await fetch("./data.json", { cache: "no-store" });
          if (!res.ok) throw new Error(`data.json: HTTP ${res.status}`);
          render((await res.json()) as ReportData);
          setLive(`live · updated ${new Date().toLocaleTimeString()}`, "ok");
        } while (again);
      } catch (e) {
        setLive(`live · ${(e as Error).message}`, "bad");
      } finally {
        inFlight = false;
      }
    };
    setLive("live · connecting", "wait");
    void refresh();
    if (typeof EventSource === "undefined") return;
    const es = new EventSource("./events");
    es.addEventListener("update", () => void refresh());
    es.onmessage = () => void refresh();
    es.onerror = () => setLive("live · disconnected, retrying", "bad");
    es.onopen = () => setLive("live · connected", "ok");
  }

  // ---------------------------------------------------------------- start

  setData(data);
  const slider = doc.getElementById("generation") as HTMLInputElement | null;
  slider?.addEventListener("input", () => setGeneration(Number(slider.value)));
  // "(shown above)" in the lineage: open the folded branches around the first occurrence.
  doc.getElementById("lineage")?.addEventListener("click", (ev) => {
    const link = (ev.target as HTMLElement | null)?.closest?.("a[href^='#lin-']");
    const target = link ? doc.getElementById(link.getAttribute("href")?.slice(1) ?? "") : null;
    if (!target) return;
    ev.preventDefault();
    for (let el = target.parentElement; el; el = el.parentElement) {
      if (el.tagName === "DETAILS") el.setAttribute("open", "");
    }
    target.scrollIntoView({ block: "center" });
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), 1200);
  });
  const heat = doc.getElementById("heatmaps");
  heat?.addEventListener("mousemove", showTooltip);
  heat?.addEventListener("mouseleave", () => {
    hover = null;
    byIdEl("tooltip").hidden = true;
  });
  function fitCharts(): void {
    for (const { chart, box } of charts) {
      chart.setSize({ width: Math.max(240, box.clientWidth), height: chart.height });
    }
  }
  let resizeQueued = false;
  win.addEventListener("resize", () => {
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(() => {
      resizeQueued = false;
      fitCharts();
    });
  });
  render();
  win.cycleqdReport = {
    render: (d?: ReportData) => render(d),
    setGeneration,
    get data() {
      return data;
    },
    get generation() {
      return pos;
    },
  };
  if (doc.body.getAttribute("data-live") === "1") startLive();
}
