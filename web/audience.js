// The preview page's audience panel: what the fans' players report (CMCD v2, README "Watching
// the audience"), as small live charts over the last 10 minutes, from this server's collector
// (GET /cmcd/{match}/figures: one point per 10 s step; a step nobody reported in has no value).

const CHARTS = [
  { key: 'viewers', label: 'Viewers', show: (v) => String(v) },
  { key: 'startup_seconds', label: 'Startup', show: (v) => `${v.toFixed(1)} s` },
  { key: 'rebuffer_ratio', label: 'Rebuffering', show: (v) => `${(100 * v).toFixed(1)}%`, max: 0.05 },
  { key: 'behind_live_seconds', label: 'Behind live', show: (v) => `${v.toFixed(1)} s` },
  { key: 'peer_share', label: 'From peers', show: (v) => `${Math.round(100 * v)}%`, max: 1 },
];
const W = 120;
const H = 28;
const STEPS = 60;
const SVG = 'http://www.w3.org/2000/svg';

/** An SVG polyline of `values` (null: a gap) scaled to `max`, the newest at the right. */
function sparkline(values, max) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', W);
  svg.setAttribute('height', H);
  svg.setAttribute('aria-hidden', 'true');
  const x = (i) => W - (values.length - 1 - i) * (W / (STEPS - 1));
  const y = (v) => H - 2 - (Math.min(v, max) / (max || 1)) * (H - 4);
  let run = [];
  const flush = () => {
    if (run.length) {
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', run.join(' '));
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', 'currentColor');
      line.setAttribute('stroke-width', '1.5');
      svg.append(line);
    }
    run = [];
  };
  values.forEach((v, i) => {
    if (v === null || v === undefined) flush();
    else run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  });
  flush();
  return svg;
}

/** Draws `points` (oldest first) into the `<dl>` `el`. */
export function drawAudience(el, points) {
  el.textContent = '';
  for (const chart of CHARTS) {
    const values = points.map((p) => p[chart.key]);
    const latest = [...values].reverse().find((v) => v !== null && v !== undefined);
    const max = chart.max ?? Math.max(1, ...values.filter((v) => typeof v === 'number'));
    const dt = document.createElement('dt');
    dt.textContent = chart.label;
    const dd = document.createElement('dd');
    dd.dataset.figure = chart.key;
    dd.append(sparkline(values, max));
    const now = document.createElement('span');
    now.className = 'now';
    now.textContent = latest === undefined ? '–' : chart.show(latest);
    dd.append(now);
    el.append(dt, dd);
  }
}

/** Keeps `el` up to date with `match`'s audience every 10 s. */
export function followAudience(el, match) {
  const refresh = async () => {
    try {
      const r = await fetch(`/cmcd/${encodeURIComponent(match)}/figures`, { cache: 'no-store' });
      if (r.ok) drawAudience(el, (await r.json()).points);
    } catch {
      // the next refresh tries again
    }
  };
  refresh();
  return setInterval(refresh, 10000);
}
