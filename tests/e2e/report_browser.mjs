// Drives Debian's Chromium through playwright-core (web/node_modules) for tests/e2e/
// test_report.py: loads report pages and the live dashboard and prints, as one JSON
// document, what each page drew, as Plotly rendered it in the DOM, with its console errors.
//
//   node report_browser.mjs JOB.json      JOB: {"chromium": PATH, "pages": [...], "live": {...}}
//
// A page: {"name", "url", "screenshot": PATH or null, "hover": true to hover the first
// timeline box}. "live": {"url", "samples": N, "until_ms"}: the dashboard, sampled until it
// has drawn the final report.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'web', 'package.json'));
const { chromium } = require('playwright-core');

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function collectErrors(page) {
  const errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('requestfailed', (req) => {
    // A report must need no network: any request other than the page itself is an error.
    errors.push(`request failed: ${req.url()} (${req.failure() ? req.failure().errorText : '?'})`);
  });
  return errors;
}

// What Plotly put in the DOM: per trace of the result plot, the drawn markers; the
// timeline's bars; the hover text of the first box.
async function rendered(page) {
  return page.evaluate(() => {
    const plot = document.getElementById('result-plot');
    // Plotly groups each trace's SVG as `.trace<uid>` in its subplot's layer.
    const traces = plot && plot._fullData ? plot._fullData.map((t) => {
      const group = plot.querySelector(`.scatterlayer .trace${t.uid}`);
      return { name: t.name, type: t.type, n: t.x ? t.x.length : 0,
               markers: group ? group.querySelectorAll('.points path').length : null };
    }) : [];
    const timeline = document.getElementById('timeline');
    return {
      report: window.binflowReport,
      traces,
      histogramBars: plot ? plot.querySelectorAll('.barlayer .point').length : 0,
      timelineBars: timeline.querySelectorAll('.barlayer .point').length,
      timelineNote: document.getElementById('timeline-note').textContent,
      title: document.getElementById('title').textContent,
      resultsRows: document.querySelectorAll('#results-data tbody tr').length,
      cards: Object.fromEntries([...document.querySelectorAll('.card')].map((c) =>
        [c.id, c.querySelector('.value').textContent])),
      externalScripts: [...document.querySelectorAll('script[src], link[href]')].length,
    };
  });
}

async function hoverFirstBox(page) {
  const first = page.locator('#timeline .barlayer .point path').first();
  await first.scrollIntoViewIfNeeded();
  const box = await first.boundingBox();
  if (!box) return null;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForSelector('#timeline .hoverlayer .hovertext', { timeout: 5000 });
  return page.locator('#timeline .hoverlayer .hovertext').first().textContent();
}

async function loadReport(browser, spec) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = collectErrors(page);
  const t0 = Date.now();
  await page.goto(spec.url);
  await page.waitForFunction(() => window.binflowReport && window.binflowReport.ready === true,
                             null, { timeout: 60000 });
  const loadMs = Date.now() - t0;
  const out = { name: spec.name, loadMs, ...(await rendered(page)) };
  if (spec.hover) out.hover = await hoverFirstBox(page);
  if (spec.screenshot) await page.screenshot({ path: spec.screenshot, fullPage: true });
  out.errors = errors;
  await page.close();
  return out;
}

// The dashboard while the run goes on: samples of the live state until the final report.
// The browser is up before the run starts (the test starts the run once this script prints
// "browser ready"); the page is loaded as soon as the dashboard answers.
async function watchLive(browser, spec) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  process.stderr.write('browser ready\n');
  // Node asks until the server answers (a refused connection fails at once), then the page
  // loads, with time to spare for 5 MB of page on a loaded machine.
  const start = Date.now();
  for (;;) {
    try {
      if ((await fetch(`${spec.url}state.json`)).ok) break;
    } catch (e) {
      if (Date.now() - start > 20000) throw e;
    }
    await new Promise((resolve) => { setTimeout(resolve, 20); });
  }
  const errors = collectErrors(page);
  await page.goto(spec.url, { timeout: 30000, waitUntil: 'domcontentloaded' });
  const samples = [];
  const deadline = Date.now() + spec.until_ms;
  while (Date.now() < deadline) {
    const s = await page.evaluate(() => ({
      live: window.binflowReport.live || null, ready: window.binflowReport.ready === true,
      text: (document.getElementById('live-text') || {}).textContent || '',
      timelineBars: document.querySelectorAll('#timeline .barlayer .point').length,
    }));
    samples.push(s);
    if (s.ready) break;
    await page.waitForTimeout(300);
  }
  const out = { name: 'live', samples, ...(await rendered(page)) };
  if (spec.screenshot) await page.screenshot({ path: spec.screenshot, fullPage: true });
  out.errors = errors.filter((e) => !/ERR_CONNECTION_REFUSED/.test(e));
  await page.close();
  return out;
}

const browser = await chromium.launch({ executablePath: job.chromium, args: ['--no-sandbox'] });
const results = { pages: [] };
try {
  for (const spec of job.pages || []) results.pages.push(await loadReport(browser, spec));
  if (job.live) results.live = await watchLive(browser, job.live);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results));
