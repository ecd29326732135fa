// Small SVG line charts: no chart library, nothing loaded from elsewhere. Each chart is an image
// with a text alternative (role="img" + aria-label) summing up what it shows.
import type { Point } from "./api";

interface Series {
  label: string;
  className: string;
  values: (number | null)[];
}

const W = 600;
const H = 180;
const PAD = { left: 64, right: 8, top: 10, bottom: 24 };

/** Points with no neighbour to draw a line to: drawn as dots, so a lone minute still shows. */
function lonePoints(values: (number | null)[], max: number): { x: number; y: number }[] {
  const step = (W - PAD.left - PAD.right) / Math.max(1, values.length - 1);
  return values.flatMap((v, i) =>
    v !== null && (values[i - 1] ?? null) === null && (values[i + 1] ?? null) === null
      ? [{ x: PAD.left + i * step, y: PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / max) }]
      : [],
  );
}

function path(values: (number | null)[], max: number): string {
  const step = (W - PAD.left - PAD.right) / Math.max(1, values.length - 1);
  let d = "";
  let drawing = false;
  values.forEach((v, i) => {
    if (v === null) {
      drawing = false;
      return;
    }
    const x = PAD.left + i * step;
    const y = PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / max);
    d += `${drawing ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
    drawing = true;
  });
  return d.trim();
}

export function LineChart({ title, unit, series, points, summary }: { title: string; unit: string; series: Series[]; points: Point[]; summary: string }) {
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const nice = niceMax(max);
  const first = points[0]?.minute;
  const last = points[points.length - 1]?.minute;
  return (
    <figure class="chart">
      <figcaption>
        <span class="chart-title">{title}</span>
        <span class="legend" aria-hidden="true">
          {series.map((s) => (
            <span class={`key ${s.className}`}>{s.label}</span>
          ))}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${summary}`} preserveAspectRatio="none">
        {[0, 0.5, 1].map((f) => {
          const y = PAD.top + (H - PAD.top - PAD.bottom) * (1 - f);
          return (
            <g>
              <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={y} y2={y} />
              <text class="axis" x={PAD.left - 6} y={y + 4} text-anchor="end">
                {formatNumber(nice * f)}
                {f === 1 ? unit : ""}
              </text>
            </g>
          );
        })}
        {first && (
          <text class="axis" x={PAD.left} y={H - 6}>
            {clock(first)}
          </text>
        )}
        {last && (
          <text class="axis" x={W - PAD.right} y={H - 6} text-anchor="end">
            {clock(last)}
          </text>
        )}
        {series.map((s) => (
          <g class={s.className}>
            <path class="line" d={path(s.values, nice)} />
            {lonePoints(s.values, nice).map((p) => (
              <circle class="dot" cx={p.x} cy={p.y} r={4} />
            ))}
          </g>
        ))}
      </svg>
    </figure>
  );
}

function niceMax(max: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= max) return step * magnitude;
  return max;
}

export const formatNumber = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(n >= 10_000 ? 0 : 1)}k` : Number.isInteger(n) ? String(n) : n.toFixed(1));
export const clock = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
