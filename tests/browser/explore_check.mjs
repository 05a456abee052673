// Drives Debian's chromium (headless, through playwright-core) over a page
// written by `tinyllm explore` and reports, as one JSON object on stdout,
// what the page shows after each interaction. It judges nothing: the
// comparisons with the engine's own dumps are in tests/test_explore.py.
//
// usage: node explore_check.mjs PAGE.html PLAN.json SCREENSHOT.png
// PLAN: {"chromium": "/usr/bin/chromium", "attention": [[layer, head, query], ...],
//        "hover": [[layer, head, query, key], ...], "temperatures": [0.5, 1.0, ...],
//        "dist_pos": P, "click": P, "run": R}
// With "only_load": true, only what the page shows on opening (a second
// page, e.g. another model family's positions view).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const [page_path, plan_path, shot_path] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(plan_path, "utf8"));
const out = { console_errors: [], page_errors: [], requests: [] };

const browser = await chromium.launch({
  executablePath: plan.chromium,
  headless: true,
  // as root in a container, without a network: no sandbox, no background traffic
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", m => { if (m.type() === "error") out.console_errors.push(m.text()); });
  page.on("pageerror", e => out.page_errors.push(String(e)));
  page.on("request", r => { if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) out.requests.push(r.url()); });
  await page.goto(pathToFileURL(page_path).href, { waitUntil: "load" });
  await page.waitForFunction(() => window.tinyllmExplore !== undefined, null, { timeout: 20000 });

  out.n_tokens = await page.evaluate(() => window.tinyllmExplore.data.n_tokens);
  out.layers = await page.evaluate(() => window.tinyllmExplore.data.attention.layers);
  out.tokens = await page.evaluate(() => window.tinyllmExplore.data.tokens);

  // what the page opens on: the head its rule chose, the KV cache line, the positions view
  out.opening = await page.evaluate(() => ({ layer_index: window.tinyllmExplore.state.layer,
                                             head: window.tinyllmExplore.state.head,
                                             text: document.getElementById("attn-opening").textContent }));
  out.kv_line = await page.locator("#kv-line").innerText();
  out.positions = await page.evaluate(() => ({ caption: document.getElementById("pos-caption").textContent,
                                               width: document.getElementById("pos-canvas").width,
                                               height: document.getElementById("pos-canvas").height,
                                               rope: window.tinyllmExplore.shown.rope }));
  out.whatif_rows = await page.$$eval("#whatif-table tr[data-run]", els => els.map(e => Array.from(e.cells, c => c.textContent)));
  if (plan.only_load) {
    process.stdout.write(JSON.stringify(out));
    await browser.close();
    process.exit(0);
  }

  // the token strip: a click selects the query and changes the views
  const before = await page.locator("#attn-row").innerText();
  const selBefore = await page.locator("#token-strip .tok.selected").getAttribute("data-pos");
  await page.locator(`#token-strip .tok[data-pos="${plan.click}"]`).click();
  out.click = {
    selected_before: Number(selBefore),
    selected_after: Number(await page.locator("#token-strip .tok.selected").getAttribute("data-pos")),
    attn_row_changed: before !== (await page.locator("#attn-row").innerText()),
    attn_row_keys: await page.locator("#attn-row > .tok").count(),
    dist_pos: await page.evaluate(() => window.tinyllmExplore.shown.dist.pos),
  };

  // attention as the page shows it: choose layer and head in the controls,
  // click the query token, read the "attends to" row (text and attributes)
  out.attention = [];
  for (const [layer, head, query] of plan.attention) {
    await page.selectOption("#attn-layer", String(out.layers.indexOf(layer)));
    await page.selectOption("#attn-head", String(head));
    await page.locator(`#token-strip .tok[data-pos="${query}"]`).click();
    const weights = await page.$$eval("#attn-row > .tok", els => els.map(e => Number(e.querySelector(".w").textContent)));
    const exact = await page.$$eval("#attn-row > .tok", els => els.map(e => Number(e.dataset.weight)));
    const heatmap = await page.evaluate(() => window.tinyllmExplore.shown.heatmap);
    out.attention.push({ layer, head, query, shown: weights, attrs: exact, heatmap });
  }

  // hover a heatmap cell: the tooltip names the weight
  out.hover = [];
  for (const [layer, head, query, key] of plan.hover) {
    await page.selectOption("#attn-layer", String(out.layers.indexOf(layer)));
    await page.selectOption("#attn-head", String(head));
    await page.locator("#attn-heatmap").scrollIntoViewIfNeeded();
    const box = await page.locator("#attn-heatmap").boundingBox();
    const geo = await page.evaluate(() => window.tinyllmExplore.heatmapGeometry(document.getElementById("attn-heatmap")));
    const canvasW = await page.evaluate(() => document.getElementById("attn-heatmap").width);
    const scale = box.width / canvasW;
    await page.mouse.move(box.x + (key + 0.5) * geo.cell * scale, box.y + (query + 0.5) * geo.cell * scale);
    out.hover.push({ layer, head, query, key, tooltip: await page.locator("#tooltip").innerText() });
  }

  // the logit lens: the top token of every (row, position)
  out.lens = await page.$$eval("#lens-grid td", els => els.map(e => ({ row: Number(e.dataset.row), pos: Number(e.dataset.pos),
                                                                      id: Number(e.dataset.id), p: Number(e.dataset.p) })));

  // hovering a lens cell lists its top tokens
  const cell = page.locator(`#lens-grid td[data-row="${plan.lens_hover[0]}"][data-pos="${plan.lens_hover[1]}"]`);
  await cell.hover();
  out.lens_hover = { row: plan.lens_hover[0], pos: plan.lens_hover[1], tooltip: await page.locator("#tooltip").innerText() };

  // the next-token distribution at a position, at several temperatures set
  // with the slider (top-k, top-p, min-p kept at the engine's defaults)
  await page.locator(`#token-strip .tok[data-pos="${plan.dist_pos}"]`).click();
  out.dist = [];
  for (const t of plan.temperatures) {
    await page.locator("#temp").fill(String(t));
    const rows = await page.$$eval("#dist-list tr[data-id]", els => els.map(e => ({ id: Number(e.dataset.id), p: Number(e.dataset.p),
                                                                                     q: Number(e.dataset.q), kept: e.className === "kept" })));
    out.dist.push({ temperature: t, label: await page.locator("#temp-value").innerText(), rows,
                    state: await page.evaluate(() => window.tinyllmExplore.shown.dist) });
  }
  // filters changed by their controls
  await page.locator("#temp").fill("1");
  await page.locator("#top-k").fill("3");
  await page.locator("#top-p").fill("1");
  await page.locator("#min-p").fill("0");
  out.dist_top_k3 = await page.evaluate(() => window.tinyllmExplore.shown.dist);

  // a what-if run: its button switches the attention and distribution views
  await page.locator(`#whatif-runs button[data-run="${plan.run}"]`).click();
  await page.locator(`#token-strip .tok[data-pos="${plan.dist_pos}"]`).click();
  out.run = await page.evaluate(() => ({ run: window.tinyllmExplore.state.run, heatmap: window.tinyllmExplore.shown.heatmap,
                                         attn_row: window.tinyllmExplore.shown.attnRow, dist: window.tinyllmExplore.shown.dist,
                                         note: document.getElementById("run-note").textContent }));
  await page.locator('#whatif-runs button[data-run="0"]').click();
  out.run_back = await page.evaluate(() => window.tinyllmExplore.shown.heatmap);

  // the decode steps: one line per generated token
  out.decode_lines = await page.locator("#decode-list > div").count();

  await page.locator("#token-strip .tok").last().click();
  await page.screenshot({ path: shot_path, fullPage: false });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out));
