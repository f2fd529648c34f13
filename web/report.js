// The binflow report page: draws one tool's results and the accounting of its run from the
// JSON document the page carries (binflow report) or polls (the live dashboard). Plotly
// draws every plot; this script only chooses what to draw. `window.binflowReport` states
// what was drawn (points, upper limits, timeline boxes) for the browser tests.
(function () {
  'use strict';

  const data = JSON.parse(document.getElementById('binflow-data').textContent);
  const drawn = { result: {}, timeline: {} };
  window.binflowReport = drawn;

  const STATUS_COLOURS = { ok: '#1f77b4', empty: '#a0a0a0', failed: '#d62728' };
  const OTHER_COLOUR = '#ff7f0e';
  const PLOT_CONFIG = { responsive: true, displaylogo: false };
  const TABLE_PAGE_ROWS = 50;

  // ---------------------------------------------------------------- tables
  function col(table, name) {
    if (!table) return null;
    const c = table.columns.find((x) => x.name === name);
    return c ? c.values : null;
  }
  function unitOf(table, name) {
    const c = table && table.columns.find((x) => x.name === name);
    return c && c.unit ? c.unit : '';
  }
  function rowCount(table) {
    return table && table.columns.length ? table.columns[0].values.length : 0;
  }
  function attr(list, name) {
    const hit = (list || []).find((kv) => kv[0] === name);
    return hit ? hit[1] : undefined;
  }
  function num(x) {
    return x === null || x === undefined || x === '' ? NaN : Number(x);
  }
  function finite(x) {
    return typeof x === 'number' && isFinite(x);
  }
  function withUnit(label, unit) {
    return unit ? `${label} [${unit}]` : label;
  }
  function fmt(x, digits = 4) {
    if (!finite(x)) return String(x);
    if (x !== 0 && (Math.abs(x) >= 1e5 || Math.abs(x) < 1e-3)) return x.toExponential(digits - 1);
    return Number(x.toPrecision(digits)).toString();
  }
  function seconds(s) {
    if (!finite(s) || s < 0) return '?';
    if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }
  function mib(kib) {
    return kib / 1024;
  }
  // maxOf(values) overflows the call stack at a few hundred thousand values.
  function maxOf(values, empty = -Infinity) {
    let m = -Infinity;
    for (const v of values) if (v > m) m = v;
    return values.length ? m : empty;
  }
  function minOf(values, empty = Infinity) {
    let m = Infinity;
    for (const v of values) if (v < m) m = v;
    return values.length ? m : empty;
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Rows the tool marked ok, with the threshold below which an upper limit replaces the point.
  function okRows(results) {
    const status = col(results, 'status');
    const n = rowCount(results);
    const rows = [];
    for (let i = 0; i < n; ++i) if (!status || status[i] === 'ok') rows.push(i);
    return rows;
  }
  function notDrawnNote(results) {
    const status = col(results, 'status');
    if (!status) return '';
    const counts = {};
    for (const s of status) if (s !== 'ok') counts[s] = (counts[s] || 0) + 1;
    const parts = Object.entries(counts).map(([s, k]) => `${k} ${s}`);
    return parts.length ? `Bins not drawn: ${parts.join(', ')}.` : '';
  }

  // Points with errors, and upper limits (down arrows) where TS is below the threshold.
  function pointsAndLimits(spec) {
    const pts = { x: [], y: [], ex: [], exm: [], ey: [], text: [] };
    const uls = { x: [], y: [], ex: [], exm: [], len: [], text: [] };
    for (const i of spec.rows) {
      const ts = spec.ts ? spec.ts[i] : Infinity;
      const ul = spec.ul ? spec.ul[i] : NaN;
      const target = finite(ul) && finite(ts) && ts < spec.threshold ? uls : pts;
      target.x.push(spec.x[i]);
      target.ex.push(spec.xhi[i] - spec.x[i]);
      target.exm.push(spec.x[i] - spec.xlo[i]);
      target.text.push(spec.hover(i));
      if (target === uls) {
        target.y.push(ul);
        target.len.push(ul * 0.35);
      } else {
        target.y.push(spec.y[i]);
        target.ey.push(spec.ey[i]);
      }
    }
    const traces = [
      {
        name: spec.name, type: spec.gl ? 'scattergl' : 'scatter', mode: 'markers',
        x: pts.x, y: pts.y, text: pts.text, hoverinfo: 'text',
        marker: { size: 5, color: STATUS_COLOURS.ok },
        error_y: { type: 'data', array: pts.ey, visible: true, thickness: 1 },
        error_x: { type: 'data', array: pts.ex, arrayminus: pts.exm, visible: true, thickness: 1 },
      },
      {
        name: `upper limits (TS < ${spec.threshold})`, type: spec.gl ? 'scattergl' : 'scatter',
        mode: 'markers', x: uls.x, y: uls.y, text: uls.text, hoverinfo: 'text',
        marker: { symbol: 'triangle-down', size: 8, color: '#555' },
        error_y: { type: 'data', symmetric: false, array: uls.len.map(() => 0),
                   arrayminus: uls.len, visible: true, thickness: 1, width: 0 },
        error_x: { type: 'data', array: uls.ex, arrayminus: uls.exm, visible: true, thickness: 1 },
      },
    ];
    return { traces, points: pts.x.length, limits: uls.x.length };
  }

  function note(text) {
    document.getElementById('result-note').textContent = text;
  }

  // Integral flux of bins over intervals [lo, hi) (time or phase): the spec pointsAndLimits
  // draws, with `where(i)` saying where bin i lies in the hover text.
  function intervalFluxSpec(d, lo, hi, where) {
    const r = d.results;
    const rows = okRows(r);
    const mid = lo.map((a, i) => 0.5 * (a + hi[i]));
    const flux = col(r, 'flux');
    const fluxErr = col(r, 'flux_err');
    const fluxUl = col(r, 'flux_ul');
    const ts = col(r, 'ts');
    const unit = unitOf(r, 'flux');
    return {
      name: 'flux', rows, x: mid, xlo: lo, xhi: hi, y: flux, ey: fluxErr, ul: fluxUl, ts, unit,
      threshold: d.ts_threshold, gl: rows.length > 5000,
      hover: (i) => `bin ${col(r, 'bin')[i]}<br>${where(i)}<br>` +
        `flux ${fmt(flux[i])} ± ${fmt(fluxErr[i])} ${unit}<br>UL ${fmt(fluxUl[i])}` +
        `<br>TS ${fmt(ts[i])}`,
    };
  }

  // ---------------------------------------------------------------- result views
  function drawLightcurve(d) {
    const r = d.results;
    const m0 = col(r, 'mjd_start');
    const m1 = col(r, 'mjd_stop');
    const origin = m0.length ? minOf(m0) : 0;
    const spec = intervalFluxSpec(d, m0, m1, (i) =>
      `MJD ${fmt(m0[i], 10)} – ${fmt(m1[i], 10)}<br>` +
      `${fmt((m0[i] - origin) * 24)} – ${fmt((m1[i] - origin) * 24)} h`);
    const { rows, x: mid, ts, unit } = spec;
    const { traces, points, limits } = pointsAndLimits(spec);
    const tsTrace = {
      name: 'TS', type: spec.gl ? 'scattergl' : 'scatter', mode: 'markers', xaxis: 'x', yaxis: 'y2',
      x: rows.map((i) => mid[i]), y: rows.map((i) => ts[i]), marker: { size: 4, color: '#2ca02c' },
      hovertemplate: 'TS %{y:.2f}<extra></extra>',
    };
    const hours = { name: 'hours', x: [0], y: [null], xaxis: 'x3', yaxis: 'y', showlegend: false,
                    hoverinfo: 'skip', type: 'scatter', mode: 'markers' };
    const lo = minOf(m0);
    const hi = maxOf(m1);
    const pad = 0.02 * (hi - lo || 1);
    const layout = {
      height: 560, margin: { t: 70, r: 20, b: 50, l: 80 }, legend: { orientation: 'h', y: 1.18 },
      xaxis: { title: { text: 'time [MJD]' }, range: [lo - pad, hi + pad], domain: [0, 1],
               anchor: 'y2', tickformat: '.4f' },
      xaxis3: { title: { text: 'time since the first bin [h]' }, overlaying: 'x', side: 'top',
                range: [(lo - pad - origin) * 24, (hi + pad - origin) * 24], anchor: 'y' },
      yaxis: { title: { text: withUnit('flux', unit) }, domain: [0.32, 1], exponentformat: 'e' },
      yaxis2: { title: { text: 'TS' }, domain: [0, 0.24] },
      shapes: [{ type: 'line', xref: 'paper', x0: 0, x1: 1, yref: 'y2', y0: d.ts_threshold,
                 y1: d.ts_threshold, line: { dash: 'dot', width: 1, color: '#888' } }],
    };
    const div = document.getElementById('result-plot');
    return Plotly.newPlot(div, [...traces, tsTrace, hours], layout, PLOT_CONFIG).then(() => {
      // The hours axis follows the MJD axis when the user zooms.
      div.on('plotly_relayout', (ev) => {
        const a = ev['xaxis.range[0]'];
        const b = ev['xaxis.range[1]'];
        if (a === undefined || b === undefined) return;
        Plotly.relayout(div, { 'xaxis3.range': [(a - origin) * 24, (b - origin) * 24] });
      });
      drawn.result = { kind: 'lightcurve', points, limits, ts: rows.length };
    });
  }

  function drawSpectrum(d) {
    const r = d.results;
    const rows = okRows(r);
    const e0 = col(r, 'e_min');
    const e1 = col(r, 'e_max');
    const er = col(r, 'e_ref');
    const dnde = col(r, 'dnde');
    const dndeErr = col(r, 'dnde_err');
    const dndeUl = col(r, 'dnde_ul');
    const ts = col(r, 'ts');
    const e2 = (f, i) => f[i] * er[i] * er[i];
    const sed = er.map((_, i) => e2(dnde, i));
    const sedErr = er.map((_, i) => e2(dndeErr, i));
    const sedUl = er.map((_, i) => e2(dndeUl, i));
    const sedUnit = 'TeV cm^-2 s^-1';
    const spec = {
      name: 'flux points', rows, x: er, xlo: e0, xhi: e1, y: sed, ey: sedErr, ul: sedUl, ts,
      threshold: d.ts_threshold, gl: false,
      hover: (i) => `bin ${col(r, 'bin')[i]}<br>${fmt(e0[i])} – ${fmt(e1[i])} TeV<br>` +
        `E² dN/dE ${fmt(sed[i])} ± ${fmt(sedErr[i])} ${sedUnit}<br>UL ${fmt(sedUl[i])}` +
        `<br>TS ${fmt(ts[i])}<br>counts ${col(r, 'counts')[i]}`,
    };
    const { traces, points, limits } = pointsAndLimits(spec);
    let model = 0;
    const n0 = num(attr(d.attributes, 'N0'));
    const gamma = num(attr(d.attributes, 'gamma'));
    if (attr(d.attributes, 'global_status') === 'ok' && finite(n0) && finite(gamma) && e0.length) {
      // E^2 dN/dE of the global power law (pivot 1 TeV) and its 1-sigma band from the errors
      // of N0 and gamma; their covariance is not stored, so the band treats them as independent.
      const n0Err = num(attr(d.attributes, 'N0_err'));
      const gErr = finite(num(attr(d.attributes, 'gamma_err'))) ? num(attr(d.attributes, 'gamma_err')) : 0;
      const lo = Math.log(minOf(e0));
      const hi = Math.log(maxOf(e1));
      const e = [];
      for (let k = 0; k <= 100; ++k) e.push(Math.exp(lo + (hi - lo) * k / 100));
      const f = e.map((x) => n0 * Math.pow(x, 2 - gamma));
      const rel = e.map((x) => Math.hypot(finite(n0Err) ? n0Err / n0 : 0, Math.log(x) * gErr));
      traces.push({ name: 'band', x: [...e, ...e.slice().reverse()],
                    y: [...f.map((v, k) => v * Math.exp(rel[k])),
                        ...f.map((v, k) => v * Math.exp(-rel[k])).reverse()],
                    fill: 'toself', fillcolor: 'rgba(255,127,14,0.2)', line: { width: 0 },
                    hoverinfo: 'skip', type: 'scatter', mode: 'lines' });
      traces.push({ name: `power law, Γ = ${fmt(gamma, 3)}`, x: e, y: f, type: 'scatter',
                    mode: 'lines', line: { color: OTHER_COLOUR },
                    hovertemplate: '%{x:.3g} TeV: %{y:.3e}<extra>model</extra>' });
      model = 1;
    }
    const layout = {
      height: 480, margin: { t: 40, r: 20, b: 50, l: 80 }, legend: { orientation: 'h', y: 1.1 },
      xaxis: { type: 'log', title: { text: 'energy [TeV]' } },
      yaxis: { type: 'log', title: { text: withUnit('E² dN/dE', sedUnit) }, exponentformat: 'e' },
    };
    return Plotly.newPlot('result-plot', traces, layout, PLOT_CONFIG).then(() => {
      drawn.result = { kind: 'spectrum', points, limits, model };
    });
  }

  function drawPhasecurve(d) {
    const r = d.results;
    const p0 = col(r, 'phase_min');
    const p1 = col(r, 'phase_max');
    const spec = intervalFluxSpec(d, p0, p1, (i) => `phase ${fmt(p0[i])} – ${fmt(p1[i])}`);
    const { unit } = spec;
    const { traces, points, limits } = pointsAndLimits(spec);
    const layout = {
      height: 440, margin: { t: 40, r: 20, b: 50, l: 80 }, legend: { orientation: 'h', y: 1.1 },
      xaxis: { title: { text: 'phase' }, range: [0, 1] },
      yaxis: { title: { text: withUnit('flux', unit) }, exponentformat: 'e' },
    };
    return Plotly.newPlot('result-plot', traces, layout, PLOT_CONFIG).then(() => {
      drawn.result = { kind: 'phasecurve', points, limits };
    });
  }

  function normalPdf(x) {
    return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  }
  // erf to 1.5e-7 (Abramowitz and Stegun 7.1.26): enough for expected counts per bin.
  function erf(x) {
    const t = 1 / (1 + 0.3275911 * Math.abs(x));
    const y = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 +
      t * 1.061405429)))) * Math.exp(-x * x);
    return x >= 0 ? y : -y;
  }

  function drawPull(d) {
    const r = d.results;
    const rows = okRows(r);
    const names = r.columns.map((c) => c.name).filter((n) => n.startsWith('pull_'));
    const width = 0.25;
    const traces = [];
    const layout = { height: 380, margin: { t: 60, r: 20, b: 50, l: 60 }, showlegend: false,
                     annotations: [] };
    const histograms = {};
    names.forEach((name, k) => {
      const axis = k === 0 ? '' : String(k + 1);
      const values = rows.map((i) => col(r, name)[i]).filter(finite);
      const lo = -5;
      const hi = 5;
      traces.push({ type: 'histogram', name, x: values, xaxis: `x${axis}`, yaxis: `y${axis}`,
                    xbins: { start: lo, end: hi, size: width }, marker: { color: STATUS_COLOURS.ok },
                    hovertemplate: `${name} %{x}: %{y} trials<extra></extra>` });
      const xs = [];
      for (let x = lo; x <= hi + 1e-9; x += 0.05) xs.push(x);
      traces.push({ type: 'scatter', mode: 'lines', name: 'unit normal', x: xs,
                    y: xs.map((x) => values.length * width * normalPdf(x)), xaxis: `x${axis}`,
                    yaxis: `y${axis}`, line: { color: OTHER_COLOUR },
                    hovertemplate: 'N(0, 1): %{y:.1f}<extra></extra>' });
      const domain = [k / names.length + 0.04, (k + 1) / names.length - 0.04];
      layout[`xaxis${axis}`] = { domain, title: { text: name }, range: [lo, hi], anchor: `y${axis}` };
      layout[`yaxis${axis}`] = { title: { text: k === 0 ? 'trials' : '' }, anchor: `x${axis}` };
      const mean = num(attr(d.attributes, `${name}_mean`));
      const sd = num(attr(d.attributes, `${name}_width`));
      layout.annotations.push({ text: `mean ${fmt(mean, 3)}, width ${fmt(sd, 3)}`, showarrow: false,
                                xref: `x${axis} domain`, yref: `y${axis} domain`, x: 0.5, y: 1.12 });
      histograms[name] = values.length;
    });
    return Plotly.newPlot('result-plot', traces, layout, PLOT_CONFIG).then(() => {
      drawn.result = { kind: 'pull', histograms, trials: rows.length };
    });
  }

  function drawTsdist(d) {
    const r = d.results;
    const rows = okRows(r);
    const ts = rows.map((i) => col(r, 'ts')[i]).filter(finite).map((x) => Math.max(0, x));
    const width = 0.5;
    const top = Math.max(8, Math.ceil(maxOf(ts, 0) / width) * width);
    const edges = [];
    for (let x = 0; x <= top + 1e-9; x += width) edges.push(x);
    // Half a chi^2 with one degree of freedom: a delta of weight 1/2 at 0, then chi^2_1 / 2.
    const cdf = (x) => (x <= 0 ? 0.5 : 0.5 + 0.5 * erf(Math.sqrt(x / 2)));
    const centres = edges.slice(0, -1).map((a) => a + width / 2);
    const expected = centres.map((c, k) => ts.length * (cdf(edges[k + 1]) - (k === 0 ? 0 : cdf(edges[k]))));
    const traces = [
      { type: 'histogram', name: 'trials', x: ts, xbins: { start: 0, end: top, size: width },
        marker: { color: STATUS_COLOURS.ok }, hovertemplate: 'TS %{x}: %{y} trials<extra></extra>' },
      { type: 'scatter', mode: 'lines+markers', name: '½ χ²₁ expectation', x: centres, y: expected,
        line: { color: OTHER_COLOUR, shape: 'hvh' },
        hovertemplate: 'expected %{y:.2f}<extra></extra>' },
    ];
    const layout = {
      height: 420, margin: { t: 40, r: 20, b: 50, l: 60 }, legend: { orientation: 'h', y: 1.1 },
      xaxis: { title: { text: 'TS' } }, yaxis: { type: 'log', title: { text: 'trials per bin' } },
    };
    return Plotly.newPlot('result-plot', traces, layout, PLOT_CONFIG).then(() => {
      drawn.result = { kind: 'tsdist', trials: ts.length };
    });
  }

  const VIEWS = {
    lightcurve: { heading: 'Light curve', draw: drawLightcurve },
    spectrum: { heading: 'Spectrum', draw: drawSpectrum },
    phasecurve: { heading: 'Phase curve', draw: drawPhasecurve },
    pull: { heading: 'Pull distributions', draw: drawPull },
    tsdist: { heading: 'TS distribution', draw: drawTsdist },
  };

  // ---------------------------------------------------------------- table view
  function drawTable(container, table, caption) {
    container.replaceChildren();
    const n = rowCount(table);
    if (!table || !table.columns.length) return;
    const details = el('details');
    if (caption.open) details.setAttribute('open', '');
    details.append(el('summary', {}, `${caption.text} (${n} rows, ${table.columns.length} columns)`));
    const pager = el('div', { class: 'pager' });
    const t = el('table', { class: 'data', id: caption.id });
    details.append(pager, t);
    container.append(details);
    const head = el('tr');
    for (const c of table.columns) {
      head.append(el('th', { title: c.description || '' }, c.unit ? `${c.name} [${c.unit}]` : c.name));
    }
    t.append(el('thead'));
    t.firstChild.append(head);
    const body = el('tbody');
    t.append(body);
    let page = 0;
    const pages = Math.max(1, Math.ceil(n / TABLE_PAGE_ROWS));
    const show = () => {
      body.replaceChildren();
      for (let i = page * TABLE_PAGE_ROWS; i < Math.min(n, (page + 1) * TABLE_PAGE_ROWS); ++i) {
        const tr = el('tr');
        for (const c of table.columns) {
          const v = c.values[i];
          tr.append(el('td', c.type === 'str' ? { class: 'text' } : {},
                       c.type === 'f64' ? (v === null ? 'NaN' : fmt(v, 6)) : String(v)));
        }
        body.append(tr);
      }
      label.textContent = ` rows ${n ? page * TABLE_PAGE_ROWS + 1 : 0}–${Math.min(n, (page + 1) * TABLE_PAGE_ROWS)} of ${n} `;
    };
    const prev = el('button', { type: 'button' }, '‹ previous');
    const next = el('button', { type: 'button' }, 'next ›');
    const label = el('span');
    prev.onclick = () => { if (page > 0) { --page; show(); } };
    next.onclick = () => { if (page + 1 < pages) { ++page; show(); } };
    pager.append(prev, label, next);
    show();
  }

  // ---------------------------------------------------------------- the run
  function card(label, value, id) {
    const c = el('div', { class: 'card', id });
    c.append(el('div', { class: 'value' }, value), el('div', { class: 'label' }, label));
    return c;
  }

  function drawCards(d, bins) {
    const ranks = d.run.ranks;
    const ra = d.run.attributes;
    const rss = col(ranks, 'peak_rss') || [];
    const status = d.results ? col(d.results, 'status') : null;
    const failed = status ? status.filter((s) => s === 'failed').length : 0;
    const resumed = (col(bins, 'resumed') || []).filter((x) => x === 1).length;
    const cards = document.getElementById('run-cards');
    cards.replaceChildren(
      card('wall time', seconds(num(attr(ra, 'wall'))), 'card-wall'),
      card('nodes', String(attr(ra, 'nodes') ?? '?'), 'card-nodes'),
      card('ranks', String(attr(d.attributes, 'ranks') ?? rowCount(ranks)), 'card-ranks'),
      card('threads per rank', String(attr(d.attributes, 'threads_per_rank') ?? '?'), 'card-threads'),
      card('bins', `${rowCount(bins)}${failed ? `, ${failed} failed` : ''}${resumed ? `, ${resumed} resumed` : ''}`, 'card-bins'),
      card('parallel efficiency', fmt(num(attr(ra, 'efficiency')), 3), 'card-efficiency'),
      card('load imbalance', fmt(num(attr(ra, 'imbalance')), 3), 'card-imbalance'),
      card('largest peak memory', rss.length ? `${fmt(mib(maxOf(rss)), 4)} MiB` : '?', 'card-memory'),
    );
    const placement = attr(ra, 'placement');
    document.getElementById('placement').textContent = placement ? `Placement: ${placement}.` : '';
  }

  // Boxes for the timeline: one per bin, or one per run of consecutive bins of one rank and
  // one status that together stay narrower than a pixel (the page stays fast at 100 000 bins).
  function timelineBoxes(bins, statuses, pxPerSecond) {
    const n = rowCount(bins);
    const rank = col(bins, 'rank');
    const start = col(bins, 'start');
    const end = col(bins, 'end');
    const wall = col(bins, 'wall');
    const cpu = col(bins, 'cpu');
    const index = col(bins, 'bin');
    const resumed = col(bins, 'resumed') || [];
    const order = [];
    for (let i = 0; i < n; ++i) if (resumed[i] !== 1) order.push(i);
    order.sort((a, b) => rank[a] - rank[b] || start[a] - start[b]);
    // A rank that runs several bins at once (MapOptions::concurrent_bins) gets one lane per
    // bin in flight: each bin goes to the first lane of its rank free at its start.
    const laneEnds = new Map();  // rank -> the end of each lane's last bin
    const laneOf = (i) => {
      const ends = laneEnds.get(rank[i]) || [];
      laneEnds.set(rank[i], ends);
      let k = ends.findIndex((e) => e <= start[i]);
      if (k < 0) k = ends.push(0) - 1;
      ends[k] = end[i];
      return k;
    };
    const boxes = [];
    const open = new Map();  // `${rank} ${lane}` -> the box being grown there
    for (const i of order) {
      const s = statuses[i];
      const lane = laneOf(i);
      const key = `${rank[i]} ${lane}`;
      let box = open.get(key);
      const fits = box && box.status === s && (end[i] - box.start) * pxPerSecond < 1;
      if (fits) {
        box.end = Math.max(box.end, end[i]);
        box.last = index[i];
        box.count += 1;
        box.wall += wall[i];
        box.cpu += cpu[i];
      } else {
        box = { rank: rank[i], lane, status: s, start: start[i], end: end[i], first: index[i],
                last: index[i], count: 1, wall: wall[i], cpu: cpu[i] };
        open.set(key, box);
        boxes.push(box);
      }
    }
    const lanes = new Map([...laneEnds].map(([r, ends]) => [r, ends.length]));
    return { boxes, skipped: n - order.length, lanes };
  }

  // The timeline's row of a rank's lane: "rank 3", or "rank 3 · 1" when it has several.
  function laneLabel(rank, lane, lanes) {
    return (lanes.get(rank) || 1) > 1 ? `rank ${rank} · ${lane}` : `rank ${rank}`;
  }

  function boxText(b) {
    const head = b.count === 1 ? `bin ${b.first}` : `bins ${b.first}…${b.last} (${b.count} bins)`;
    return `${head}<br>rank ${b.rank}, ${b.status}<br>wall ${seconds(b.wall)}, CPU ${seconds(b.cpu)}` +
      `<br>${fmt(b.start, 5)} – ${fmt(b.end, 5)} s`;
  }

  function drawTimeline(bins, statuses, wall, ranks, clock) {
    const div = document.getElementById('timeline');
    const width = Math.max(200, (div.clientWidth || 1000) - 80 - 20);
    const span = Math.max(wall, maxOf(col(bins, 'end') || []), 1e-9);
    const { boxes, skipped, lanes } = timelineBoxes(bins, statuses, width / span);
    const byStatus = {};
    for (const b of boxes) (byStatus[b.status] = byStatus[b.status] || []).push(b);
    const traces = Object.entries(byStatus).map(([s, list]) => ({
      type: 'bar', orientation: 'h', name: s, base: list.map((b) => b.start),
      x: list.map((b) => Math.max(b.end - b.start, 0)), y: list.map((b) => laneLabel(b.rank, b.lane, lanes)),
      text: list.map(boxText), hoverinfo: 'text', textposition: 'none',
      marker: { color: STATUS_COLOURS[s] || OTHER_COLOUR, line: { width: 0 } },
    }));
    const rankLabels = [];
    for (let r = 0; r < ranks; ++r) {
      for (let k = 0; k < (lanes.get(r) || 1); ++k) rankLabels.push(laneLabel(r, k, lanes));
    }
    const layout = {
      barmode: 'overlay', bargap: 0.25, height: Math.min(900, 120 + 28 * rankLabels.length),
      margin: { t: 10, r: 20, b: 45, l: 80 }, legend: { orientation: 'h', y: -0.35 },
      xaxis: { title: { text: `time since the ${clock || 'map started on the rank'} [s]` }, range: [0, span] },
      yaxis: { type: 'category', categoryarray: rankLabels, categoryorder: 'array', autorange: 'reversed' },
    };
    const aggregated = boxes.length < rowCount(bins) - skipped;
    document.getElementById('timeline-note').textContent =
      `${rowCount(bins) - skipped} bins in ${boxes.length} boxes` +
      (aggregated ? ' (neighbouring bins narrower than a pixel are merged; hover says which)' : '') +
      (skipped ? `; ${skipped} bins resumed from a checkpoint ran in an earlier run and are not shown` : '') + '.';
    drawn.timeline = { bins: rowCount(bins) - skipped, boxes: boxes.length, aggregated, resumed: skipped,
                       rows: rankLabels };
    return Plotly.react(div, traces, layout, PLOT_CONFIG);
  }

  function drawRankBars(ranksTable) {
    const rank = col(ranksTable, 'rank') || [];
    const labels = rank.map((r) => `rank ${r}`);
    const busy = col(ranksTable, 'busy') || [];
    const idle = col(ranksTable, 'idle') || [];
    const bins = col(ranksTable, 'bins') || [];
    const rss = (col(ranksTable, 'peak_rss') || []).map(mib);
    const h = Math.min(600, 120 + 26 * rank.length);
    const axes = { yaxis: { type: 'category', autorange: 'reversed' }, height: h,
                   margin: { t: 40, r: 20, b: 45, l: 80 } };
    return Promise.all([
      Plotly.react('rank-time', [
        { type: 'bar', orientation: 'h', name: 'busy', y: labels, x: busy, marker: { color: STATUS_COLOURS.ok },
          text: bins.map((b) => `${b} bins`), hovertemplate: '%{y}: busy %{x:.3f} s, %{text}<extra></extra>',
          textposition: 'none' },
        { type: 'bar', orientation: 'h', name: 'idle', y: labels, x: idle, marker: { color: '#cccccc' },
          hovertemplate: '%{y}: idle %{x:.3f} s<extra></extra>' },
      ], { ...axes, barmode: 'stack', title: { text: 'busy and idle time per rank', font: { size: 13 } },
           xaxis: { title: { text: 'time [s]' } }, legend: { orientation: 'h', y: -0.3 } }, PLOT_CONFIG),
      Plotly.react('rank-memory', [
        { type: 'bar', orientation: 'h', name: 'peak memory', y: labels, x: rss,
          marker: { color: '#9467bd' }, hovertemplate: '%{y}: %{x:.1f} MiB<extra></extra>' },
      ], { ...axes, title: { text: 'peak resident memory per rank', font: { size: 13 } },
           xaxis: { title: { text: 'memory [MiB]' } } }, PLOT_CONFIG),
    ]);
  }

  function drawParameters(d) {
    const table = { columns: [
      { name: 'name', type: 'str', values: d.attributes.map((kv) => kv[0]) },
      { name: 'value', type: 'str', values: d.attributes.map((kv) => kv[1]) },
    ] };
    drawTable(document.getElementById('parameters'), table,
              { text: 'parameters, provenance and summaries (/results attributes)', open: true, id: 'parameters-table' });
  }

  function statusesOf(d, bins) {
    // /run/bins is in bin order, as /results is: row i of one is row i of the other.
    const status = d.results ? col(d.results, 'status') : null;
    const n = rowCount(bins);
    const out = new Array(n);
    for (let i = 0; i < n; ++i) out[i] = status && status[i] !== undefined ? status[i] : 'ok';
    return out;
  }

  function drawRun(d) {
    const bins = d.run.bins;
    drawCards(d, bins);
    const ranks = Math.max(rowCount(d.run.ranks), num(attr(d.attributes, 'ranks')) || 1);
    return Promise.all([
      drawTimeline(bins, statusesOf(d, bins), num(attr(d.run.attributes, 'wall')) || 0, ranks),
      drawRankBars(d.run.ranks),
    ]);
  }

  function drawReport(d) {
    const tool = d.tool || '?';
    document.getElementById('title').textContent = `binflow ${tool}: ${d.source}`;
    document.title = `binflow ${tool}: ${d.source}`;
    const started = attr(d.attributes, 'start_time');
    document.getElementById('subtitle').textContent =
      `${attr(d.attributes, 'command_line') || ''}${started ? ` — started ${started}` : ''}`;
    const view = VIEWS[tool];
    document.getElementById('result-heading').textContent = view ? view.heading : 'Results';
    note(notDrawnNote(d.results));
    drawTable(document.getElementById('results-table'), d.results,
              { text: 'results (/results)', open: !view, id: 'results-data' });
    drawParameters(d);
    const plot = view ? view.draw(d) : Promise.resolve(document.getElementById('result-plot').remove());
    if (!view) drawn.result = { kind: 'table', rows: rowCount(d.results) };
    return Promise.all([plot, drawRun(d)]);
  }

  // ---------------------------------------------------------------- live dashboard
  // Polls the run's state, grows the timeline and the memory bars, and draws the full report
  // once the run has written it. Bins arrive as rows [bin, rank, start, end, wall, cpu,
  // threads, peak_rss, status] since the last poll.
  function live(d) {
    const box = document.getElementById('live-status');
    box.hidden = false;
    const bins = { columns: ['bin', 'rank', 'start', 'end', 'wall', 'cpu', 'threads', 'peak_rss']
      .map((name) => ({ name, values: [] })) };
    bins.columns.push({ name: 'resumed', values: [] });
    const statuses = [];
    let next = 0;
    let drawing = Promise.resolve();
    let lastState = null;
    const show = (s) => {
      const pct = s.total ? Math.round((100 * s.done) / s.total) : 0;
      box.className = s.finished ? 'finished' : '';
      box.replaceChildren(
        el('span', { id: 'live-text' },
           `${s.finished ? 'finished' : 'running'} ${s.map}: ${s.done}/${s.total} bins` +
           `${s.failed ? `, ${s.failed} failed` : ''}, ${s.ranks_working}/${s.ranks} ranks working, ` +
           `elapsed ${seconds(s.elapsed)}${s.finished ? '' : `, ETA ${s.eta >= 0 ? seconds(s.eta) : '?'}`}`),
      );
      const bar = el('div', { class: 'bar' });
      const fill = el('div', { style: `width:${pct}%` });
      bar.append(fill);
      box.append(bar);
      drawn.live = { done: s.done, total: s.total, failed: s.failed, finished: s.finished,
                     version: s.version, bins: statuses.length };
    };
    const drawLive = (s) => {
      const ranksTable = { columns: [{ name: 'rank', values: [] }, { name: 'peak_rss', values: [] }] };
      const most = new Array(s.ranks).fill(0);
      const rank = bins.columns[1].values;
      const rss = bins.columns[7].values;
      for (let i = 0; i < rank.length; ++i) most[rank[i]] = Math.max(most[rank[i]], rss[i]);
      most.forEach((m, r) => { ranksTable.columns[0].values.push(r); ranksTable.columns[1].values.push(m); });
      const ends = bins.columns[3].values;
      return Promise.all([
        drawTimeline(bins, statuses, ends.length ? maxOf(ends) : 0, s.ranks, 'run started'),
        Plotly.react('rank-memory', [{ type: 'bar', orientation: 'h', y: most.map((_, r) => `rank ${r}`),
          x: most.map(mib), marker: { color: '#9467bd' }, hovertemplate: '%{y}: %{x:.1f} MiB<extra></extra>' }],
        { title: { text: 'peak resident memory per rank (so far)', font: { size: 13 } },
          height: Math.min(600, 120 + 26 * s.ranks), margin: { t: 40, r: 20, b: 45, l: 80 },
          yaxis: { type: 'category', autorange: 'reversed' }, xaxis: { title: { text: 'memory [MiB]' } } },
        PLOT_CONFIG),
      ]);
    };
    // The report is fetched at once (the run's process waits only a moment for it), then drawn.
    const finish = () => {
      const report = fetch(d.live.report).then((r) => (r.ok ? r.json() : null));
      return drawing.then(() => report).then((full) => {
        if (full) return drawReport(full).then(() => { show(lastState); drawn.ready = true; });
        return null;
      });
    };
    const poll = () => fetch(`${d.live.state}?since=${next}`).then((r) => r.json()).then((s) => {
      for (const row of s.bins) {
        for (let c = 0; c < 8; ++c) bins.columns[c].values.push(row[c]);
        bins.columns[8].values.push(0);
        statuses.push(row[8]);
      }
      next += s.bins.length;
      lastState = s;
      show(s);
      drawing = drawing.then(() => drawLive(s));
      if (s.finished && s.report_ready) return finish();
      if (s.finished) {
        // Interrupted or failed before writing results: the timeline is all there is.
        box.append(el('div', { id: 'live-no-results' }, 'The run ended without results (interrupted, or its bins failed).'));
        drawn.ready = true;
        return null;
      }
      setTimeout(poll, d.live.refresh_ms);
      return null;
    }).catch(() => {
      box.className = 'lost';
      box.append(el('div', { id: 'live-lost' }, 'The run is no longer reachable (it has ended or was stopped); this is its last state.'));
    });
    document.getElementById('title').textContent = `binflow ${d.tool}: live run`;
    document.getElementById('result-heading').textContent = 'Results (drawn when the run ends)';
    drawParameters(d);
    poll();
  }

  if (data.live) {
    live(data);
  } else {
    drawReport(data).then(() => { drawn.ready = true; });
  }
}());
