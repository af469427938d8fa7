/** A horizontal bar chart of each row's mean test score with ±std whiskers, as plain SVG. */
import type { RowKind } from "./rows.ts";

export interface Bar {
  label: string;
  mean: number;
  std: number;
  kind: RowKind;
}

const COLOURS: Record<RowKind, string> = {
  reference: "#9aa5b1",
  merge: "#6c8ebf",
  "fine-tune": "#d79b00",
  cycleqd: "#2e8b57",
  ablation: "#8fbc8f",
};

const xml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function barChart(title: string, bars: readonly Bar[]): string {
  const labelWidth = 250;
  const plotWidth = 420;
  const rowHeight = 22;
  const top = 46;
  const bottom = 34;
  const width = labelWidth + plotWidth + 120;
  const height = top + bars.length * rowHeight + bottom;
  const x = (v: number) => labelWidth + Math.max(0, Math.min(1, v)) * plotWidth;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${xml(title)}</text>`,
  ];
  // Grid and axis at 0, 0.2, …, 1.
  const axisY = top + bars.length * rowHeight;
  for (let i = 0; i <= 5; i++) {
    const v = i / 5;
    out.push(
      `<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${axisY}" stroke="#e3e3e3"/>`,
      `<text x="${x(v)}" y="${axisY + 16}" text-anchor="middle" fill="#555">${v.toFixed(1)}</text>`,
    );
  }
  out.push(
    `<text x="${labelWidth + plotWidth / 2}" y="${axisY + 30}" text-anchor="middle" fill="#555">mean test pass rate over skills (± std over seeds)</text>`,
  );
  bars.forEach((b, i) => {
    const y = top + i * rowHeight;
    const mid = y + rowHeight / 2;
    out.push(
      `<text x="${labelWidth - 8}" y="${mid + 4}" text-anchor="end">${xml(b.label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 3}" width="${(x(b.mean) - labelWidth).toFixed(1)}" height="${rowHeight - 6}" fill="${COLOURS[b.kind]}"/>`,
    );
    if (b.std > 0) {
      const lo = x(b.mean - b.std).toFixed(1);
      const hi = x(b.mean + b.std).toFixed(1);
      out.push(
        `<line x1="${lo}" y1="${mid}" x2="${hi}" y2="${mid}" stroke="black"/>`,
        `<line x1="${lo}" y1="${mid - 5}" x2="${lo}" y2="${mid + 5}" stroke="black"/>`,
        `<line x1="${hi}" y1="${mid - 5}" x2="${hi}" y2="${mid + 5}" stroke="black"/>`,
      );
    }
    const text = b.std > 0 ? `${b.mean.toFixed(3)} ± ${b.std.toFixed(3)}` : b.mean.toFixed(3);
    out.push(
      `<text x="${(x(b.mean + b.std) + 6).toFixed(1)}" y="${mid + 4}" fill="#333">${text}</text>`,
    );
  });
  out.push(
    `<line x1="${labelWidth}" y1="${top - 6}" x2="${labelWidth}" y2="${axisY}" stroke="#333"/>`,
    "</svg>",
    "",
  );
  return out.join("\n");
}
