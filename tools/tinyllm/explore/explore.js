/* tinyllm explore: the page's logic. It reads the data the CLI embedded
 * (<script id="tinyllm-data">: JSON with base64 arrays, little-endian) and
 * draws every view from it; nothing is fetched. window.tinyllmExplore exposes
 * the decoded data and what each view shows, for tests and the console. */
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("tinyllm-data").textContent);
  const N = D.n_tokens, P = D.n_prompt, H = D.attention.heads, V = D.model.n_vocab;

  /* ------------------------------------------------------ decoding -- */
  function bytes(b64) {
    const bin = atob(b64), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return new DataView(out.buffer);
  }
  const HALF = new Float32Array(65536); /* every float16 bit pattern as a float */
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
    HALF[h] = e === 31 ? (m ? NaN : s * Infinity) : e === 0 ? s * m * Math.pow(2, -24) : s * (1 + m / 1024) * Math.pow(2, e - 15);
  }
  function f16(b64) {
    const dv = bytes(b64), out = new Float32Array(dv.byteLength / 2);
    for (let i = 0; i < out.length; i++) out[i] = HALF[dv.getUint16(2 * i, true)];
    return out;
  }
  function f32(b64) {
    const dv = bytes(b64), out = new Float32Array(dv.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  }
  function u32(b64) {
    const dv = bytes(b64), out = new Uint32Array(dv.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = dv.getUint32(4 * i, true);
    return out;
  }
  const stats = f32(D.stats.data);
  const TRI = N * (N + 1) / 2;
  /* the runs the page switches between: the model as trained (the page's own
   * run), then each what-if run (--toggles): the same text, one experiment */
  const RUNS = [{ name: D.experiments === "none" ? "as trained" : D.experiments, square: false, nonfinite: null,
                  attn: f16(D.attention.data), bits: f32(D.bits), logits: D.logits,
                  logitValues: f16(D.logits.values), logitIds: D.logits.ids ? u32(D.logits.ids) : null,
                  continuation: { labels: D.labels.slice(P), stop: D.generation.stop } }]
    .concat(D.runs.map(r => ({ name: r.name, square: r.square, nonfinite: r.nonfinite, attn: f16(r.attention),
                               bits: f32(r.bits), logits: r.logits, logitValues: f16(r.logits.values),
                               logitIds: r.logits.ids ? u32(r.logits.ids) : null, continuation: r.continuation })));
  let run = RUNS[0];

  /* attention weight of query q on key k in stored layer index li, head h
   * (k <= q, or any key in a run without the mask) */
  function weight(li, h, q, k) {
    return run.square ? run.attn[((li * H + h) * N + q) * N + k] : run.attn[(li * H + h) * TRI + q * (q + 1) / 2 + k];
  }
  /* a row of the heatmap: head h, or the mean of the heads (h = -1); the
   * keys the query could read: 0..q, or all N without the mask */
  function attnRow(li, h, q) {
    const row = new Float64Array(run.square ? N : q + 1);
    for (let k = 0; k < row.length; k++) {
      if (h >= 0) row[k] = weight(li, h, q, k);
      else { let s = 0; for (let j = 0; j < H; j++) s += weight(li, j, q, k); row[k] = s / H; }
    }
    return row;
  }
  function entropyBits(row) {
    let e = 0;
    for (const p of row) if (p > 0) e -= p * Math.log2(p);
    return e;
  }
  /* the stored next-token logits after position pos: [{id, logit}] */
  function logitsAt(pos) {
    const L = run.logits, K = L.k, base = pos * K, max = L.max[pos] === null ? 0 : L.max[pos], out = new Array(K);
    for (let i = 0; i < K; i++) out[i] = { id: run.logitIds ? run.logitIds[base + i] : i, logit: run.logitValues[base + i] + max };
    return out;
  }
  function statOf(tapIndex, pos, field) { return stats[(tapIndex * N + pos) * D.stats.fields.length + field]; }
  function tapIndex(name) { return D.stats.taps.findIndex(t => t.name === name); }

  /* ------------------------------------------------------- sampler -- */
  /* The engine's sampler (src/sampler.c) on the stored logits: NaN counts as
   * -inf; T = 0 is greedy; else p = softmax(logits / T), then min-p (keep p >=
   * min_p * p_max), top-k (ties by id), sort by p descending (ties by id),
   * top-p (keep the prefix whose sum first reaches top_p). Returns every
   * stored token with p and, for survivors, the renormalised probability. */
  function applySampler(entries, T, topK, topP, minP) {
    const rows = entries.map(e => ({ id: e.id, logit: isNaN(e.logit) ? -Infinity : e.logit, p: 0, kept: false, why: "", q: 0 }));
    let best = rows[0];
    for (const r of rows) if (r.logit > best.logit || (r.logit === best.logit && r.id < best.id)) best = r;
    if (best.logit === -Infinity) return { rows, kept: 0, mass: 0 };
    if (T === 0) {
      for (const r of rows) { r.p = r === best ? 1 : 0; r.why = r === best ? "" : "greedy"; }
      best.kept = true; best.q = 1;
      return { rows, kept: 1, mass: 1 };
    }
    let sum = 0;
    for (const r of rows) {
      r.p = best.logit === Infinity ? (r.logit === Infinity ? 1 : 0) : Math.exp((r.logit - best.logit) / T);
      sum += r.p;
    }
    let pMax = 0;
    for (const r of rows) { r.p /= sum; pMax = Math.max(pMax, r.p); }
    const order = rows.slice().sort((a, b) => b.p - a.p || a.id - b.id);
    let cands = order;
    if (minP > 0) {
      const floor = minP * pMax;
      for (const r of cands) if (r.p < floor) r.why = "min-p";
      cands = cands.filter(r => r.p >= floor);
    }
    if (topK > 0 && topK < cands.length) {
      for (const r of cands.slice(topK)) r.why = "top-k";
      cands = cands.slice(0, topK);
    }
    if (topP < 1) {
      let cum = 0, keep = cands.length;
      for (let i = 0; i < cands.length; i++) { cum += cands[i].p; if (cum >= topP) { keep = i + 1; break; } }
      for (const r of cands.slice(keep)) r.why = "top-p";
      cands = cands.slice(0, keep);
    }
    let mass = 0;
    for (const r of cands) { r.kept = true; mass += r.p; }
    for (const r of cands) r.q = r.p / mass;
    return { rows: order, kept: cands.length, mass };
  }

  /* -------------------------------------------------------- helpers -- */
  const $ = id => document.getElementById(id);
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const label = i => D.labels[i];
  const vocab = id => (id >= 0 && id < D.vocab.length ? D.vocab[id] : "?");
  const fmt = (x, d) => (x === null || x === undefined || isNaN(x) ? "–" : Number(x).toFixed(d === undefined ? 3 : d));
  /* white to blue for a weight in [0, 1] */
  function heat(w) {
    if (!isFinite(w)) return "#d0342c"; /* NaN or inf: the arithmetic broke (naive-softmax) */
    const t = Math.max(0, Math.min(1, w)), r = Math.round(255 - 224 * t), g = Math.round(255 - 160 * t), b = Math.round(255 - 64 * t);
    return "rgb(" + r + "," + g + "," + b + ")";
  }
  /* a diverging colour for statistics: blue below the middle, orange above */
  function diverge(t) {
    t = Math.max(-1, Math.min(1, t));
    return t < 0 ? "rgb(" + Math.round(255 + 190 * t) + "," + Math.round(255 + 110 * t) + ",255)"
                 : "rgb(255," + Math.round(255 - 120 * t) + "," + Math.round(255 - 200 * t) + ")";
  }
  const tip = $("tooltip");
  function showTip(ev, text) {
    tip.textContent = text;
    tip.style.display = "block";
    tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 260) + "px";
    tip.style.top = ev.clientY + 14 + "px";
  }
  function hideTip() { tip.style.display = "none"; }

  /* ---------------------------------------------------------- state -- */
  const S = {
    pos: N - 1, layer: 0 /* index into D.attention.layers */, head: 0,
    temp: D.sampler_defaults.temperature, topK: D.sampler_defaults.top_k,
    topP: D.sampler_defaults.top_p, minP: D.sampler_defaults.min_p,
    statsKind: "resid_ffn", statsField: 4, run: 0,
  };
  const shown = { heatmap: null, attnRow: null, dist: null, lens: null, rope: null };

  /* ------------------------------------------------------- header -- */
  function drawHeader() {
    const m = D.model, g = D.generation;
    $("model-line").textContent = m.file + (m.name ? " (" + m.name + ")" : "") + " · " + m.architecture + ", " +
      m.n_layer + " layers, " + m.n_head + " heads (" + m.n_head_kv + " KV), dim " + m.n_embd + ", vocabulary " +
      m.n_vocab + " · " + P + " prompt tokens + " + g.made + " generated (" +
      (g.greedy ? "greedy" : "T " + fmt(g.temperature, 2) + ", seed " + g.seed) + ", stopped: " + g.stop + ")" +
      (D.experiments !== "none" ? " · EXPERIMENT: " + D.experiments + " (the model with that changed, not as trained)" : "");
    $("footer").textContent = "tinyllm " + D.version + " · " + D.format + " · attention stored for layers " +
      D.attention.layers.join(", ") + " · next-token logits: " +
      (D.logits.k < V ? "the " + D.logits.k + " most likely of " + V + " per position (probabilities renormalised over them)"
                      : "all " + V + " per position") + " (float16)";
  }

  /* ------------------------------------------------------- tokens -- */
  function drawTokens() {
    const strip = $("token-strip");
    strip.textContent = "";
    for (let i = 0; i < N; i++) {
      const t = el("span", { class: "tok " + (i < P ? "prompt" : "generated") + (i === S.pos ? " selected" : ""),
                             "data-pos": i, title: "position " + i + ", token " + D.tokens[i] }, label(i));
      t.addEventListener("click", () => select(i));
      strip.appendChild(t);
    }
  }

  /* ---------------------------------------------------- attention -- */
  function setupAttentionControls() {
    const ls = $("attn-layer"), hs = $("attn-head");
    D.attention.layers.forEach((l, i) => ls.appendChild(el("option", { value: i }, "layer " + l)));
    hs.appendChild(el("option", { value: -1 }, "mean of heads"));
    for (let h = 0; h < H; h++) hs.appendChild(el("option", { value: h }, "head " + h));
    ls.addEventListener("change", () => { S.layer = +ls.value; drawAttention(); });
    hs.addEventListener("change", () => { S.head = +hs.value; drawAttention(); });
  }
  /* cells of whole pixels, the canvas fitted to them (at most 460 px a side,
   * at least 1 px a cell) */
  function heatmapGeometry() {
    const cell = Math.max(1, Math.min(24, Math.floor(460 / N)));
    return { cell, size: cell * N };
  }
  function drawHeatmap() {
    const c = $("attn-heatmap"), ctx = c.getContext("2d"), g = heatmapGeometry();
    if (c.width !== g.size) c.width = c.height = g.size;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, c.width, c.height);
    shown.heatmap = [];
    for (let q = 0; q < N; q++) {
      const row = attnRow(S.layer, S.head, q);
      shown.heatmap.push(Array.from(row));
      for (let k = 0; k < N; k++) {
        ctx.fillStyle = k < row.length ? heat(Math.sqrt(row[k])) : "#e3e5ea"; /* above the diagonal: masked */
        ctx.fillRect(k * g.cell, q * g.cell, g.cell, g.cell);
      }
    }
    ctx.strokeStyle = "#1d2330";
    ctx.lineWidth = Math.max(1, g.cell / 6);
    ctx.strokeRect(0, S.pos * g.cell, g.size, g.cell);
  }
  function heatmapCell(ev) {
    const c = $("attn-heatmap"), r = c.getBoundingClientRect(), g = heatmapGeometry();
    const x = (ev.clientX - r.left) * c.width / r.width, y = (ev.clientY - r.top) * c.height / r.height;
    const k = Math.floor(x / g.cell), q = Math.floor(y / g.cell);
    return q >= 0 && q < N && k >= 0 && k < N ? { q, k } : null;
  }
  function drawAttnRow() {
    const box = $("attn-row"), row = attnRow(S.layer, S.head, S.pos);
    shown.attnRow = { layer: D.attention.layers[S.layer], head: S.head, query: S.pos, weights: Array.from(row) };
    $("attn-query-label").textContent = "'" + label(S.pos) + "' (position " + S.pos + ")";
    box.textContent = "";
    row.forEach((w, k) => {
      const t = el("span", { class: "tok", "data-key": k, "data-weight": w.toFixed(6), title: "key " + k + ": " + w.toFixed(4) });
      t.style.background = heat(w);
      t.style.color = w > 0.55 ? "#fff" : "";
      t.appendChild(document.createTextNode(label(k)));
      t.appendChild(el("span", { class: "w" }, w.toFixed(3)));
      box.appendChild(t);
    });
  }
  /* each stored head's entropy averaged over the queries: fixed, computed once */
  function meanEntropyOf(li, h) {
    if (!run.meanEntropy) {
      run.meanEntropy = D.attention.layers.map((l, i) => {
        const row = new Float64Array(H);
        for (let j = 0; j < H; j++) {
          for (let q = 0; q < N; q++) row[j] += entropyBits(attnRow(i, j, q));
          row[j] /= N;
        }
        return row;
      });
    }
    return run.meanEntropy[li][h];
  }
  function drawEntropy() {
    const t = $("entropy-table");
    t.textContent = "";
    const table = el("table"), head = el("tr");
    head.appendChild(el("th", {}, ""));
    for (let h = 0; h < H; h++) head.appendChild(el("th", {}, "head " + h));
    table.appendChild(head);
    D.attention.layers.forEach((l, li) => {
      const tr = el("tr");
      tr.appendChild(el("th", {}, "layer " + l));
      for (let h = 0; h < H; h++) {
        const mean = meanEntropyOf(li, h);
        const at = entropyBits(attnRow(li, h, S.pos));
        const td = el("td", { "data-layer": l, "data-head": h, title: "max possible at this query: " + fmt(Math.log2(S.pos + 1), 2) },
                      fmt(mean, 2) + " / " + fmt(at, 2));
        if (li === S.layer && h === S.head) td.className = "current";
        td.style.cursor = "pointer";
        td.addEventListener("click", () => { S.layer = li; S.head = h; drawAttention(); });
        tr.appendChild(td);
      }
      table.appendChild(tr);
    });
    t.appendChild(table);
  }
  function drawThumb(canvas, li, h) {
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(N, N);
    for (let q = 0; q < N; q++)
      for (let k = 0; k < N; k++) {
        const i = 4 * (q * N + k), w = k <= q || run.square ? weight(li, h, q, k) : -1;
        const t = Math.max(0, Math.min(1, Math.sqrt(w))); /* sqrt: faint patterns stay visible */
        img.data[i] = w < 0 ? 227 : 255 - 224 * t; img.data[i + 1] = w < 0 ? 229 : 255 - 160 * t;
        img.data[i + 2] = w < 0 ? 234 : 255 - 64 * t; img.data[i + 3] = 255;
      }
    ctx.putImageData(img, 0, 0);
  }
  function drawGrid() {
    const grid = $("attn-grid");
    grid.textContent = "";
    grid.style.gridTemplateColumns = "60px repeat(" + H + ", 68px)";
    grid.appendChild(el("div"));
    for (let h = 0; h < H; h++) grid.appendChild(el("div", { class: "label" }, "head " + h));
    D.attention.layers.forEach((l, li) => {
      grid.appendChild(el("div", { class: "label" }, "layer " + l));
      for (let h = 0; h < H; h++) {
        const c = el("canvas", { width: N, height: N, "data-layer": l, "data-head": h, title: "layer " + l + ", head " + h });
        drawThumb(c, li, h);
        c.addEventListener("click", () => { S.layer = li; S.head = h; drawAttention(); });
        grid.appendChild(c);
      }
    });
  }
  function markGrid() {
    for (const c of $("attn-grid").querySelectorAll("canvas"))
      c.classList.toggle("current", +c.dataset.layer === D.attention.layers[S.layer] && +c.dataset.head === S.head);
  }
  function drawAttention() {
    $("attn-layer").value = S.layer;
    $("attn-head").value = S.head;
    $("attn-caption").textContent = "layer " + D.attention.layers[S.layer] + ", " + (S.head < 0 ? "mean of " + H + " heads" : "head " + S.head) +
      ", " + N + " x " + N;
    drawHeatmap();
    drawAttnRow();
    drawEntropy();
    markGrid();
    drawDecode();
  }

  /* ------------------------------------------------------- what if -- */
  /* Each run's numbers over the whole text: mean surprisal of the actual
   * next tokens (bits per token: lower is better), mean attention entropy
   * over the stored layers' heads and queries (bits). */
  function runSummary(r) {
    const keep = run;
    run = r;
    let bits = 0, nb = 0, ent = 0;
    for (const b of r.bits) if (isFinite(b)) { bits += b; nb++; }
    D.attention.layers.forEach((l, li) => { for (let h = 0; h < H; h++) ent += meanEntropyOf(li, h); });
    run = keep;
    return { bits: nb ? bits / nb : NaN, finiteBits: nb, entropy: ent / (D.attention.layers.length * H) };
  }
  function drawWhatIf() {
    const box = $("whatif-runs"), t = $("whatif-table");
    box.textContent = "";
    t.textContent = "";
    if (RUNS.length === 1) {
      box.appendChild(el("p", { class: "hint" }, D.toggles_left_out ? "No what-if runs: " + D.toggles_left_out + "." :
        D.experiments !== "none" ? "This page is itself one experiment (" + D.experiments + ")." : "No what-if runs (--toggles none)."));
    }
    RUNS.forEach((r, i) => {
      const b = el("button", { type: "button", "data-run": i, class: r === run ? "current" : "" }, r.name);
      b.addEventListener("click", () => selectRun(i));
      if (RUNS.length > 1) box.appendChild(b);
    });
    const head = el("tr");
    ["run", "bits per token on this text", "attention entropy (bits)", "positions with NaN/inf logits",
     "its own continuation of the prompt"].forEach(h => head.appendChild(el("th", {}, h)));
    t.appendChild(head);
    const base = runSummary(RUNS[0]);
    RUNS.forEach((r, i) => {
      const sm = runSummary(r), tr = el("tr", { "data-run": i, class: r === run ? "current" : "" });
      const delta = i && isFinite(sm.bits) ? " (" + (sm.bits >= base.bits ? "+" : "") + fmt(sm.bits - base.bits, 2) + ")" : "";
      [r.name, fmt(sm.bits, 3) + delta + (sm.finiteBits < N - 1 ? " over " + sm.finiteBits + " finite" : ""),
       fmt(sm.entropy, 3), r.nonfinite === null ? "0" : String(r.nonfinite),
       r.continuation.labels.join("") + " [" + r.continuation.stop + "]"].forEach(v => tr.appendChild(el("td", {}, v)));
      tr.addEventListener("click", () => selectRun(i));
      t.appendChild(tr);
    });
    $("run-note").textContent = run === RUNS[0] ? "" : "Showing the " + run.name + " run: the same text with that " +
      "experiment (one prefill). The attention and next-token views follow it; the logit lens and residual views " +
      "stay on the model as trained.";
  }
  function selectRun(i) {
    run = RUNS[i];
    S.run = i;
    drawWhatIf();
    drawGrid();
    drawAttention();
    drawDist();
  }

  /* ----------------------------------------------------- positions -- */
  const POS = D.positions;
  const posTable = POS.table ? f16(POS.table) : null;
  const qPre = POS.q_pre ? f16(POS.q_pre) : null, qPost = POS.q ? f16(POS.q) : null;
  /* RoPE turns pair i of every head by position x theta^(-2i/d) radians */
  const ropeFreq = i => Math.pow(POS.theta, -2 * i / POS.head_dim);
  /* the two elements of pair i in a head: adjacent (2i, 2i+1) or the halves (i, i + d/2) */
  const pairIdx = i => (POS.pairs === "halves" ? [i, i + POS.head_dim / 2] : [2 * i, 2 * i + 1]);
  function ropePair(which, pos, head, i) {
    const a = which === "pre" ? qPre : qPost, base = (pos * POS.heads + head) * POS.head_dim, [x, y] = pairIdx(i);
    return [a[base + x], a[base + y]];
  }
  function drawPositions() {
    const c = $("pos-canvas"), ctx = c.getContext("2d"), cap = $("pos-caption"), pairs = $("pos-pairs");
    pairs.textContent = "";
    if (POS.kind === "rope") {
      const half = POS.head_dim / 2, cw = Math.max(2, Math.min(12, Math.floor(560 / half))), ch = Math.max(2, Math.min(12, Math.floor(300 / N)));
      c.width = cw * half; c.height = ch * N;
      for (let p = 0; p < N; p++)
        for (let i = 0; i < half; i++) {
          ctx.fillStyle = diverge(Math.cos(p * ropeFreq(i)));
          ctx.fillRect(i * cw, p * ch, cw, ch);
        }
      cap.textContent = "RoPE: no vector is added; q and k of each head are cut into " + half + " pairs (" +
        (POS.pairs === "halves" ? "element i with i + " + half : "elements 2i, 2i+1") + ") and pair i is turned by " +
        "position x " + POS.theta + "^(-2i/" + POS.head_dim + ") radians. Picture: cos of that angle (rows: positions 0.." +
        (N - 1) + ", columns: pairs 0.." + (half - 1) + "); the first pairs turn fast, the last barely: a query and a key " +
        "then meet at an angle that depends only on their distance.";
      if (!qPre) { pairs.appendChild(el("p", { class: "hint" }, "This run had no positions (no-positions): q is not rotated.")); return; }
      const h = Math.max(0, Math.min(POS.heads - 1, S.head)), show = [0, 1, 2, 3, half - 1].filter((v, i, a) => v < half && a.indexOf(v) === i);
      pairs.appendChild(el("p", {}, "Layer " + POS.layer + ", head " + h + ": the query of '" + label(S.pos) + "' (position " +
        S.pos + ") before RoPE (grey) and after (blue), pair by pair:"));
      shown.rope = [];
      for (const i of show) {
        const cv = el("canvas", { width: 96, height: 96, "data-pair": i }), g = cv.getContext("2d");
        const pre = ropePair("pre", S.pos, h, i), post = ropePair("post", S.pos, h, i), r = Math.max(1e-6, Math.hypot(...pre), Math.hypot(...post));
        const angle = S.pos * ropeFreq(i);
        shown.rope.push({ pair: i, pre, post, angle });
        g.strokeStyle = "#c0c4cc"; g.beginPath(); g.arc(48, 48, 40, 0, 2 * Math.PI); g.stroke();
        for (const [v, col] of [[pre, "#8a909c"], [post, "#1f5fbf"]]) {
          g.strokeStyle = col; g.lineWidth = 2; g.beginPath(); g.moveTo(48, 48);
          g.lineTo(48 + 40 * v[0] / r, 48 - 40 * v[1] / r); g.stroke();
        }
        const fig = el("figure");
        fig.appendChild(cv);
        fig.appendChild(el("figcaption", {}, "pair " + i + ": " + fmt(angle % (2 * Math.PI), 2) + " rad"));
        pairs.appendChild(fig);
      }
      return;
    }
    if (!posTable) { cap.textContent = "This run had no positions (no-positions): nothing was added to the embeddings."; c.width = c.height = 1; return; }
    const dims = POS.dims, cw = Math.max(1, Math.min(8, Math.floor(720 / dims))), ch = Math.max(2, Math.min(12, Math.floor(300 / N)));
    c.width = cw * dims; c.height = ch * N;
    let mx = 0;
    for (const v of posTable) if (isFinite(v)) mx = Math.max(mx, Math.abs(v));
    for (let p = 0; p < N; p++)
      for (let i = 0; i < dims; i++) {
        ctx.fillStyle = diverge(posTable[p * dims + i] / (mx || 1));
        ctx.fillRect(i * cw, p * ch, cw, ch);
      }
    ctx.strokeStyle = "#1d2330"; ctx.strokeRect(0, S.pos * ch, c.width, ch);
    cap.textContent = (POS.kind === "learned" ? "Learned positions: a trained vector per position" :
      "Sinusoidal positions: sin and cos of position / 10000^(i/" + POS.n_embd + ")") + ", added to the token's embedding " +
      "before the first layer. Rows: positions 0.." + (N - 1) + "; columns: the first " + dims + " of " + POS.n_embd +
      " dimensions (orange positive, blue negative; largest |value| " + fmt(mx, 3) + ").";
  }

  /* ----------------------------------------------- opening head -- */
  /* The page opens on a structured head, not layer 0 head 0 (often near
   * uniform): the stored head whose queries put the most weight on a single
   * key other than the first token (the first token often soaks up weight
   * as a resting place), averaged over queries 1..N-1; ties: the first. */
  function openingHead() {
    let best = { li: 0, h: 0, score: -1 };
    D.attention.layers.forEach((l, li) => {
      for (let h = 0; h < H; h++) {
        let sum = 0;
        for (let q = 1; q < N; q++) { let m = 0; for (let k = 1; k <= q; k++) m = Math.max(m, weight(li, h, q, k)); sum += m; }
        const score = N > 1 ? sum / (N - 1) : 0;
        if (score > best.score) best = { li, h, score };
      }
    });
    return best;
  }

  /* --------------------------------------------------- logit lens -- */
  function drawLens() {
    const t = $("lens-grid"), L = D.lens, K = L.k;
    t.textContent = "";
    shown.lens = [];
    const head = el("tr");
    head.appendChild(el("th", {}, ""));
    for (let p = 0; p < N; p++) {
      const th = el("th", { "data-pos": p, title: "position " + p }, label(p));
      th.style.cursor = "pointer";
      th.addEventListener("click", () => select(p));
      head.appendChild(th);
    }
    t.appendChild(head);
    L.rows.forEach((name, r) => {
      const tr = el("tr"), cells = [];
      tr.appendChild(el("th", {}, r === 0 ? name + " (input)" : "after layer " + (r - 1)));
      for (let p = 0; p < N; p++) {
        const base = (r * N + p) * K, id = L.ids[base], pr = L.p[base];
        const lines = [];
        for (let i = 0; i < K; i++) if (L.ids[base + i] >= 0) lines.push(fmt(L.p[base + i], 3) + "  '" + vocab(L.ids[base + i]) + "'");
        const td = el("td", { "data-row": r, "data-pos": p, "data-id": id, "data-p": pr === null ? "" : pr }, vocab(id));
        td.style.background = heat(pr || 0);
        td.style.color = pr > 0.55 ? "#fff" : "";
        if (p === S.pos) td.classList.add("selected");
        td.addEventListener("mousemove", ev => showTip(ev, name + " at position " + p + " '" + label(p) + "'\n" + lines.join("\n")));
        td.addEventListener("mouseleave", hideTip);
        tr.appendChild(td);
        cells.push({ id, p: pr });
      }
      shown.lens.push(cells);
      t.appendChild(tr);
    });
  }

  /* ---------------------------------------------- residual stream -- */
  /* the residual stream's taps in forward order, and what each sublayer adds */
  const residTaps = D.stats.taps.map((t, i) => ({ t, i })).filter(x => ["embed", "pos", "resid_attn", "resid_ffn"].includes(x.t.kind));
  if (residTaps.length > 1 && residTaps[0].t.kind === "embed" && residTaps[1].t.kind === "pos") residTaps.shift();
  const addOf = { resid_attn: "attn_proj", resid_ffn: "ffn_out" };
  const norm = (ti, p) => statOf(ti, p, 4) * Math.sqrt(D.stats.taps[ti].cols); /* rms x sqrt(n) */
  function drawResidual() {
    const c = $("resid-chart"), ctx = c.getContext("2d"), W = c.width, Hh = c.height, pad = 36;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, Hh);
    let max = 0;
    for (const r of residTaps) for (let p = 0; p < N; p++) max = Math.max(max, norm(r.i, p) || 0);
    const x = j => pad + j * (W - 2 * pad) / Math.max(1, residTaps.length - 1), y = v => Hh - pad - v / (max || 1) * (Hh - 2 * pad);
    ctx.strokeStyle = "#c0c4cc";
    ctx.beginPath();
    ctx.moveTo(pad, pad / 2); ctx.lineTo(pad, Hh - pad); ctx.lineTo(W - pad / 2, Hh - pad);
    ctx.stroke();
    ctx.fillStyle = "#5c6577";
    ctx.font = "10px sans-serif";
    ctx.fillText(fmt(max, 1), 2, pad / 2 + 8);
    ctx.fillText("0", 2, Hh - pad);
    residTaps.forEach((r, j) => {
      if (residTaps.length < 30 || j % 2 === 0) ctx.fillText(r.t.name.replace("resid_", ""), x(j) - 12, Hh - pad + 14 + (j % 2) * 11);
    });
    for (let p = 0; p <= N; p++) {
      const sel = p === N, pos = sel ? S.pos : p;
      ctx.strokeStyle = sel ? "#1f5fbf" : "rgba(120,128,140,0.25)";
      ctx.lineWidth = sel ? 2.5 : 1;
      ctx.beginPath();
      residTaps.forEach((r, j) => { const v = norm(r.i, pos); j ? ctx.lineTo(x(j), y(v)) : ctx.moveTo(x(j), y(v)); });
      ctx.stroke();
    }
    const t = $("resid-table");
    t.textContent = "";
    const head = el("tr");
    ["after", "|residual|", "added |Δ|", "mean |residual| (all positions)"].forEach(h => head.appendChild(el("th", {}, h)));
    t.appendChild(head);
    for (const r of residTaps) {
      const add = addOf[r.t.kind] ? tapIndex(r.t.layer + "." + addOf[r.t.kind]) : -1;
      let mean = 0;
      for (let p = 0; p < N; p++) mean += norm(r.i, p) / N;
      const tr = el("tr", { "data-tap": r.t.name });
      [r.t.name, fmt(norm(r.i, S.pos), 3), add >= 0 ? fmt(norm(add, S.pos), 3) : "", fmt(mean, 3)].forEach(v => tr.appendChild(el("td", {}, v)));
      t.appendChild(tr);
    }
  }
  function setupStats() {
    const ks = $("stats-kind"), fs = $("stats-field"), kinds = [];
    for (const t of D.stats.taps) if (!kinds.includes(t.kind)) kinds.push(t.kind);
    kinds.forEach(k => ks.appendChild(el("option", { value: k }, k)));
    D.stats.fields.forEach((f, i) => fs.appendChild(el("option", { value: i }, f)));
    if (!kinds.includes(S.statsKind)) S.statsKind = kinds[0];
    ks.value = S.statsKind;
    fs.value = S.statsField;
    ks.addEventListener("change", () => { S.statsKind = ks.value; drawStats(); });
    fs.addEventListener("change", () => { S.statsField = +fs.value; drawStats(); });
  }
  function drawStats() {
    const t = $("stats-table"), taps = D.stats.taps.map((tp, i) => ({ tp, i })).filter(x => x.tp.kind === S.statsKind);
    t.textContent = "";
    let lo = Infinity, hi = -Infinity;
    for (const x of taps) for (let p = 0; p < N; p++) { const v = statOf(x.i, p, S.statsField); if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
    const mid = lo < 0 && hi > 0 ? 0 : (lo + hi) / 2, span = Math.max(hi - mid, mid - lo) || 1;
    const head = el("tr");
    head.appendChild(el("th", {}, D.stats.fields[S.statsField]));
    for (let p = 0; p < N; p++) head.appendChild(el("th", { title: "position " + p }, label(p)));
    t.appendChild(head);
    for (const x of taps) {
      const tr = el("tr");
      tr.appendChild(el("th", {}, x.tp.name));
      for (let p = 0; p < N; p++) {
        const v = statOf(x.i, p, S.statsField), td = el("td", { "data-tap": x.tp.name, "data-pos": p }, fmt(v, 2));
        td.style.background = isFinite(v) ? diverge((v - mid) / span) : "";
        if (p === S.pos) td.classList.add("selected");
        td.title = x.tp.name + " at " + p + ": " + D.stats.fields.map((f, j) => f + " " + fmt(statOf(x.i, p, j), 4)).join(", ");
        tr.appendChild(td);
      }
      t.appendChild(tr);
    }
  }

  /* --------------------------------------- next-token distribution -- */
  function setupSampler() {
    const bind = (id, key, parse, show) => {
      const input = $(id);
      input.value = S[key];
      input.addEventListener("input", () => { const v = parse(input.value); if (!isNaN(v)) { S[key] = v; drawDist(); } });
      return () => { input.value = S[key]; if (show) $(show).textContent = fmt(S[key], 2); };
    };
    const sync = [bind("temp", "temp", parseFloat, "temp-value"), bind("top-k", "topK", v => Math.max(0, parseInt(v, 10)), null),
                  bind("top-p", "topP", parseFloat, "top-p-value"), bind("min-p", "minP", parseFloat, "min-p-value")];
    S.syncSampler = () => sync.forEach(f => f());
    $("sampler-reset").addEventListener("click", () => {
      const d = D.sampler_defaults;
      Object.assign(S, { temp: d.temperature, topK: d.top_k, topP: d.top_p, minP: d.min_p });
      drawDist();
    });
  }
  function drawDist() {
    S.syncSampler();
    const res = applySampler(logitsAt(S.pos), S.temp, S.topK, S.topP, S.minP), show = res.rows.slice(0, 25);
    shown.dist = { pos: S.pos, temperature: S.temp, top_k: S.topK, top_p: S.topP, min_p: S.minP, kept: res.kept,
                   rows: show.map(r => ({ id: r.id, logit: r.logit, p: r.p, kept: r.kept, q: r.q })) };
    const next = S.pos + 1 < N ? " (the sequence continues with '" + label(S.pos + 1) + "')" : "";
    $("dist-summary").textContent = "After '" + label(S.pos) + "' (position " + S.pos + ")" + next + ": " + res.kept +
      " token(s) survive the filters, holding " + fmt(100 * res.mass, 1) + "% of the probability at T = " + fmt(S.temp, 2) + ".";
    const t = $("dist-list");
    t.textContent = "";
    const head = el("tr");
    ["token", "id", "logit", "p = softmax(logit / T)", "", "after filters"].forEach(h => head.appendChild(el("th", {}, h)));
    t.appendChild(head);
    for (const r of show) {
      const tr = el("tr", { class: r.kept ? "kept" : "dropped", "data-id": r.id, "data-p": r.p, "data-q": r.q });
      const bar = el("span", { class: "bar" });
      bar.style.width = Math.round(160 * r.p) + "px";
      const barCell = el("td");
      barCell.style.textAlign = "left";
      barCell.appendChild(bar);
      ["'" + vocab(r.id) + "'", r.id, fmt(r.logit, 3), fmt(r.p, 4)].forEach(v => tr.appendChild(el("td", {}, String(v))));
      tr.appendChild(barCell);
      tr.appendChild(el("td", {}, r.kept ? fmt(r.q, 4) : "dropped (" + r.why + ")"));
      t.appendChild(tr);
    }
  }

  /* -------------------------------------------------- decode steps -- */
  const kib = b => (b >= 1048576 ? fmt(b / 1048576, 2) + " MiB" : fmt(b / 1024, 1) + " KiB");
  function drawKv() {
    const kv = D.kv, m = D.model;
    $("kv-line").textContent = "KV cache: " + kib(kv.bytes_per_token) + " per token (keys and values: 2 x " + m.n_layer +
      " layers x " + m.n_head_kv + " KV heads x " + m.head_dim + " x 4 bytes); these " + N + " tokens: " +
      kib(kv.bytes_per_token * N) + "; the whole context of " + kv.n_ctx + " tokens, allocated at the start: " +
      kib(kv.bytes_context) + ".";
  }
  function drawDecode() {
    const c = $("decode-canvas"), ctx = c.getContext("2d"), steps = N - P, list = $("decode-list");
    list.textContent = "";
    if (steps <= 0) {
      c.height = 40;
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
      ctx.fillStyle = "#5c6577"; ctx.fillText("No generated tokens (-n 0): the prompt ran as one prefill.", 10, 24);
      return;
    }
    const cell = Math.max(2, Math.min(16, Math.floor((c.width - 20) / N))), top = 18;
    c.height = top + steps * cell + 4;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
    for (let k = 0; k < N; k++) { /* the cache entries: who filled them */
      ctx.fillStyle = k < P ? "#9db6e6" : "#e6a57f";
      ctx.fillRect(k * cell, 4, cell - (cell > 3 ? 1 : 0), 10);
    }
    for (let s = 0; s < steps; s++) {
      const q = P + s, row = attnRow(S.layer, S.head, q);
      for (let k = 0; k <= q; k++) { ctx.fillStyle = heat(Math.sqrt(row[k])); ctx.fillRect(k * cell, top + s * cell, cell, cell); }
      let best = 0;
      for (let k = 1; k <= q; k++) if (row[k] > row[best]) best = k;
      list.appendChild(el("div", { "data-step": s + 1 }, "step " + (s + 1) + ": '" + label(q) + "' at position " + q + " reads " +
        (q + 1) + " cached entries (" + P + " from the prefill, " + (q + 1 - P) + " from decode steps, its own included); most weight on '" +
        label(best) + "' (position " + best + ", " + fmt(row[best], 3) + ")"));
    }
  }

  /* ------------------------------------------------------ wiring -- */
  function select(pos) {
    S.pos = Math.max(0, Math.min(N - 1, pos));
    for (const t of $("token-strip").children) t.classList.toggle("selected", +t.dataset.pos === S.pos);
    drawAttention();
    drawLens();
    drawResidual();
    drawStats();
    drawDist();
    drawPositions();
  }
  const hm = $("attn-heatmap");
  hm.addEventListener("mousemove", ev => {
    const cell = heatmapCell(ev);
    if (!cell) return hideTip();
    if (cell.k >= shown.heatmap[cell.q].length) return showTip(ev, "'" + label(cell.q) + "' (" + cell.q + ") cannot see '" + label(cell.k) + "' (" + cell.k + "): masked");
    showTip(ev, "query '" + label(cell.q) + "' (" + cell.q + ") -> key '" + label(cell.k) + "' (" + cell.k + "): " +
      shown.heatmap[cell.q][cell.k].toFixed(4));
  });
  hm.addEventListener("mouseleave", hideTip);
  hm.addEventListener("click", ev => { const cell = heatmapCell(ev); if (cell) select(cell.q); });

  drawHeader();
  drawTokens();
  setupAttentionControls();
  setupStats();
  setupSampler();
  const opening = openingHead();
  S.layer = opening.li; S.head = opening.h;
  $("attn-opening").textContent = "The page opened on layer " + D.attention.layers[opening.li] + ", head " + opening.h +
    ": of all stored heads, the one whose queries put the most weight on a single key other than the first token " +
    "(that largest weight averaged over the queries: " + fmt(opening.score, 2) + "). Layer 0 head 0 is often close to uniform.";
  drawKv();
  drawWhatIf();
  drawGrid();
  select(S.pos);

  window.tinyllmExplore = { data: D, state: S, shown, weight, attnRow, logitsAt, applySampler, select, heatmapGeometry,
                            runs: RUNS, selectRun, runSummary, opening, ropePair, ropeFreq };
})();
