// @ts-check
// A small SVG bar chart of the ratios to the bare framework, per target and scenario (no dependencies).
'use strict';

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759'];

/**
 * @param {readonly [string, readonly number[]][]} rows target name and its ratio per scenario
 * @param {readonly string[]} scenarios
 * @returns {string}
 */
function renderSvg(rows, scenarios) {
  const rowH = 18 * scenarios.length + 14;
  const left = 210;
  const width = 760;
  const plot = width - left - 60;
  const height = rows.length * rowH + 60;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`];
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${left}" y="16" font-size="13" font-weight="bold">req/s ÷ bare framework (higher is better)</text>`);
  scenarios.forEach((s, i) => {
    out.push(`<rect x="${left + i * 110}" y="24" width="10" height="10" fill="${COLORS[i]}"/><text x="${left + i * 110 + 14}" y="33">${s}</text>`);
  });
  const x = (/** @type {number} */ r) => left + Math.max(0, Math.min(1.1, r)) / 1.1 * plot;
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(`<line x1="${x(tick)}" y1="40" x2="${x(tick)}" y2="${height - 10}" stroke="#ddd"/><text x="${x(tick) - 8}" y="${height}" fill="#666">${tick}</text>`);
  }
  rows.forEach(([name, ratios], r) => {
    const y0 = 44 + r * rowH;
    out.push(`<text x="${left - 8}" y="${y0 + rowH / 2}" text-anchor="end">${name}</text>`);
    ratios.forEach((ratio, i) => {
      const y = y0 + i * 18;
      const w = Number.isFinite(ratio) ? x(ratio) - left : 0;
      out.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="14" fill="${COLORS[i]}"/>`);
      out.push(`<text x="${left + w + 4}" y="${y + 11}">${Number.isFinite(ratio) ? ratio.toFixed(2) : '–'}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n');
}

module.exports = { renderSvg };
