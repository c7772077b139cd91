// Bar and line charts as plain SVG: a handful of shapes, no chart library.

import { html } from "../components.js";
import { niceMax } from "../stats.js";

const W = 420;
const H = 200;
const PAD = { left: 44, right: 12, top: 12, bottom: 40 };
const PLOT_W = W - PAD.left - PAD.right;
const PLOT_H = H - PAD.top - PAD.bottom;

function YAxis({ max, format }) {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  return ticks.map((value) => {
    const y = PAD.top + PLOT_H - (value / max) * PLOT_H;
    return html`<g key=${value}>
      <line class="grid" x1=${PAD.left} x2=${W - PAD.right} y1=${y} y2=${y} />
      <text class="tick" x=${PAD.left - 6} y=${y + 4} text-anchor="end">${format(value)}</text>
    </g>`;
  });
}

function XLabels({ labels, step }) {
  return labels.map((label, i) => html`<text key=${i} class="tick"
    x=${PAD.left + step * (i + 0.5)} y=${H - PAD.bottom + 14} text-anchor="middle"
    transform=${labels.length > 6
      ? `rotate(35 ${PAD.left + step * (i + 0.5)} ${H - PAD.bottom + 14})` : ""}>${label}</text>`);
}

/** Bars of `data` [{label, value}]; a null value is drawn as "no data" (no bar). */
export function BarChart({ title, data, max, format = String, name }) {
  const top = max || niceMax(Math.max(0, ...data.map((d) => d.value || 0)));
  const step = PLOT_W / Math.max(1, data.length);
  return html`<figure class="chart" data-chart=${name}>
    <figcaption>${title}</figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label=${title}>
      <${YAxis} max=${top} format=${format} />
      ${data.map((d, i) => {
        if (d.value === null || d.value === undefined) return null;
        const height = (d.value / top) * PLOT_H;
        return html`<rect key=${i} class="bar" x=${PAD.left + step * i + step * 0.15}
          y=${PAD.top + PLOT_H - height} width=${step * 0.7} height=${height}
          data-value=${d.value}><title>${d.label}: ${format(d.value)}</title></rect>`;
      })}
      <${XLabels} labels=${data.map((d) => d.label)} step=${step} />
    </svg>
  </figure>`;
}

/** A line through `data` [{label, value}] in order, with a dot per point. */
export function LineChart({ title, data, max, format = String, name, empty = "No data yet." }) {
  const top = max || niceMax(Math.max(0, ...data.map((d) => d.value || 0)));
  const step = PLOT_W / Math.max(1, data.length);
  const points = data.map((d, i) => [
    PAD.left + step * (i + 0.5), PAD.top + PLOT_H - (d.value / top) * PLOT_H,
  ]);
  return html`<figure class="chart" data-chart=${name}>
    <figcaption>${title}</figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label=${title}>
      <${YAxis} max=${top} format=${format} />
      ${points.length > 1 && html`<polyline class="line" points=${points.map((p) => p.join(",")).join(" ")} />`}
      ${points.map(([x, y], i) => html`<circle key=${i} class="dot" cx=${x} cy=${y} r="4"
        data-value=${data[i].value}><title>${data[i].label}: ${format(data[i].value)}</title></circle>`)}
      <${XLabels} labels=${data.map((d) => d.label)} step=${step} />
    </svg>
    ${data.length === 0 && html`<p class="note">${empty}</p>`}
  </figure>`;
}
