// InfAdapter dashboard: polls /api/state and /api/decisions once a second and
// draws SVG charts. No dependencies; everything it needs is served by the
// binary.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176", "#4db6ac", "#f06292"];
  const colors = {};
  function colorOf(name) {
    if (!(name in colors)) colors[name] = PALETTE[Object.keys(colors).length % PALETTE.length];
    return colors[name];
  }
  const $ = (id) => document.getElementById(id);
  const fmt = (v, d) => (v === null || v === undefined || isNaN(v)) ? "–" : Number(v).toFixed(d);
  const pct = (v, d) => fmt(100 * v, d);

  function el(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // chart draws lines (and optional stacked areas) into an SVG of 600x220.
  // series: [{name, color, pts: [[t, y]...], dash, area}], opts: {yMax, hline, hlabel}
  function chart(svg, series, opts) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = 600, H = 220, L = 46, R = 8, T = 8, B = 22;
    let tMin = Infinity, tMax = -Infinity, yMax = opts.yMax || 0, lo = Infinity;
    for (const s of series) for (const [t, y] of s.pts) {
      tMin = Math.min(tMin, t); tMax = Math.max(tMax, t);
      if (!opts.yMax) yMax = Math.max(yMax, y);
      lo = Math.min(lo, y);
    }
    // opts.zoom: start the y axis just below the smallest value (accuracy
    // moves by fractions of a point; a 0-based axis would hide it).
    const y0 = opts.zoom && isFinite(lo) ? Math.max(0, Math.floor(lo - 1)) : 0;
    if (opts.hline && !opts.yMax) yMax = Math.max(yMax, opts.hline * 1.15);
    if (!isFinite(tMin)) { tMin = 0; tMax = 1; }
    if (tMax === tMin) tMax = tMin + 1;
    if (yMax <= y0) yMax = y0 + 1;
    if (!opts.yMax) yMax = y0 + (yMax - y0) * 1.08;
    const x = (t) => L + (t - tMin) / (tMax - tMin) * (W - L - R);
    const y = (v) => H - B - (Math.min(Math.max(v, y0), yMax) - y0) / (yMax - y0) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = y0 + (yMax - y0) * i / 4;
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "gridline" }));
      svg.appendChild(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2)));
    }
    svg.appendChild(el("text", { x: L, y: H - 6 }, fmt(tMin, 0) + " s"));
    svg.appendChild(el("text", { x: W - R, y: H - 6, "text-anchor": "end" }, fmt(tMax, 0) + " s"));
    for (const s of series) {
      if (!s.pts.length) continue;
      const d = s.pts.map(([t, v], i) => (i ? "L" : "M") + x(t).toFixed(1) + "," + y(v).toFixed(1)).join("");
      if (s.area) {
        const base = s.base || s.pts.map(([t]) => [t, 0]);
        const back = base.slice().reverse().map(([t, v]) => "L" + x(t).toFixed(1) + "," + y(v).toFixed(1)).join("");
        svg.appendChild(el("path", { d: d + back + "Z", fill: s.color, "fill-opacity": 0.55, stroke: "none" }));
      } else {
        svg.appendChild(el("path", { d: d, fill: "none", stroke: s.color, "stroke-width": 1.8, "stroke-dasharray": s.dash || "" }));
      }
    }
    if (opts.hline) {
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(opts.hline), y2: y(opts.hline), stroke: "#ef5350", "stroke-dasharray": "5 4" }));
      svg.appendChild(el("text", { x: W - R - 2, y: y(opts.hline) - 4, "text-anchor": "end", fill: "#ef5350" }, opts.hlabel || ""));
    }
    const lg = el("g", {});
    let lx = L + 6;
    for (const s of series) {
      if (s.noLegend) continue;
      lg.appendChild(el("rect", { x: lx - 3, y: T - 1, width: 24 + 7 * s.name.length, height: 16, fill: "#182029", "fill-opacity": 0.85, rx: 3 }));
      lg.appendChild(el("rect", { x: lx, y: T + 2, width: 10, height: 10, fill: s.color }));
      const tx = el("text", { x: lx + 14, y: T + 11 }, s.name);
      lg.appendChild(tx);
      lx += 24 + 7 * s.name.length;
    }
    svg.appendChild(lg);
  }

  // stacked turns per-variant values into stacked area series.
  function stacked(series, key, names) {
    const out = [];
    let base = series.map((s) => [s.t, 0]);
    for (const n of names) {
      const top = series.map((s, i) => [s.t, base[i][1] + ((s[key] || {})[n] || 0)]);
      out.push({ name: n, color: colorOf(n), pts: top, base: base, area: true });
      base = top;
    }
    return out;
  }

  function setText(id, text, bad) {
    const e = $(id);
    e.textContent = text;
    if (bad !== undefined) e.classList.toggle("bad", !!bad);
  }

  function render(st) {
    const s = st.series || [];
    const last = s.length ? s[s.length - 1] : null;
    setText("stage", st.stage + (st.policy ? " · " + st.policy : "") + (st.dryRun ? " · dry-run" : ""));
    setText("progress", st.duration ? fmt(st.elapsed, 0) + " / " + fmt(st.duration, 0) + " s" : "");
    setText("stat-rps", last ? fmt(last.rps, 1) : "–");
    setText("stat-forecast", last ? fmt(last.forecast, 1) : "–");
    setText("stat-p99", fmt(st.totals.p99Ms, 1), st.totals.p99Ms > st.sloMs);
    setText("stat-slo", "ms (SLO " + fmt(st.sloMs, 0) + " ms)");
    setText("stat-violations", fmt(st.totals.violationPct, 2), st.totals.violationPct > 2);
    // A family without labels (published accuracies): served is not measured.
    const pub = !!st.accuracyNote;
    setText("stat-accuracy", pub ? "not measured" : pct(st.totals.servedAccuracy, 2) + "%");
    setText("stat-planned", "planned " + pct(st.totals.plannedAccuracy, 2) + "%" + (pub ? " (published, not measured)" : ""));
    setText("stat-cores", last ? fmt(last.cores, 2) : "–");
    setText("stat-budget", "of " + fmt(st.budgetCores, 2) + " budget · avg " + fmt(st.totals.avgCores, 2));
    setText("message", (st.message || "") + (pub ? " · " + st.accuracyNote : ""));

    const names = [];
    for (const v of st.variants || []) names.push(v.name);
    for (const x of s) for (const n in (x.coresBy || {})) if (names.indexOf(n) < 0) names.push(n);

    chart($("chart-load"), [
      { name: "load", color: "#4fc3f7", pts: s.map((x) => [x.t, x.rps]) },
      { name: "forecast", color: "#ffb74d", pts: s.map((x) => [x.t, x.forecast]), dash: "6 3" },
    ], {});
    chart($("chart-p99"), [
      { name: "P99", color: "#81c784", pts: s.filter((x) => x.p99Ms > 0).map((x) => [x.t, x.p99Ms]) },
    ], { hline: st.sloMs, hlabel: "SLO " + fmt(st.sloMs, 0) + " ms" });
    chart($("chart-cores"), stacked(s, "coresBy", names), { yMax: Math.max(st.budgetCores || 0, 0.5) });
    chart($("chart-share"), stacked(s, "shareBy", names), { yMax: 1 });
    chart($("chart-acc"), [
      { name: "served", color: "#81c784", pts: s.filter((x) => x.servedAccuracy > 0).map((x) => [x.t, 100 * x.servedAccuracy]) },
      { name: "planned", color: "#ba68c8", pts: s.filter((x) => x.plannedAccuracy > 0).map((x) => [x.t, 100 * x.plannedAccuracy]), dash: "6 3" },
    ], { zoom: true });

    const tb = $("variants").tBodies[0];
    tb.textContent = "";
    for (const v of st.variants || []) {
      const tr = tb.insertRow();
      tr.dataset.variant = v.name;
      const c0 = tr.insertCell();
      const sw = document.createElement("i");
      sw.style.cssText = "display:inline-block;width:10px;height:10px;margin-right:6px;background:" + colorOf(v.name);
      c0.appendChild(sw);
      c0.appendChild(document.createTextNode(v.name));
      tr.insertCell().textContent = pct(v.accuracy, 2) + "%" + (pub ? " (published, not measured)" : "");
      tr.insertCell().textContent = v.cores > 0 ? fmt(v.cores, 2) : "off";
      tr.insertCell().textContent = v.cores > 0 ? pct(v.share, 1) + "%" : "–";
    }
    const rb = $("runs").tBodies[0];
    rb.textContent = "";
    const runs = (st.finished || []).slice();
    if (st.stage !== "done" && st.totals && st.totals.policy) runs.push(Object.assign({ live: true }, st.totals));
    for (const r of runs) {
      const tr = rb.insertRow();
      tr.dataset.policy = r.policy;
      for (const v of [r.policy + (r.live ? " (running)" : ""), r.requests, fmt(r.violationPct, 2) + "%", fmt(r.p99Ms, 1),
        pub ? "not measured" : pct(r.servedAccuracy, 2) + "%", pct(r.plannedAccuracy, 2) + "%" + (pub ? " (published)" : ""), fmt(r.avgCores, 2), r.errors]) tr.insertCell().textContent = v;
    }
  }

  function renderDecisions(ds) {
    const tb = $("decisions").tBodies[0];
    tb.textContent = "";
    for (const d of ds.slice(-12).reverse()) {
      const tr = tb.insertRow();
      const plan = ((d.plan && d.plan.variants) || []).map((v) => v.name + ":" + v.cores + "c/" + (100 * v.share).toFixed(0) + "%").join(" ");
      const t = d.timings || {};
      // A reactive decision (between ticks: the load outgrew what runs) says
      // so, with the load it had to plan for.
      const why = d.trigger === "reactive" ? " · reactive, ≥ " + fmt((d.inputs || {}).minLoad, 0) + " rps" : "";
      for (const v of [d.seq, new Date(d.time).toLocaleTimeString(), d.result + why + (d.error ? " (" + d.error + ")" : ""),
        fmt(d.forecast, 1), plan, fmt(d.objective, 4),
        fmt(t.forecastMs, 2) + " / " + fmt(t.solveMs, 2) + " / " + fmt(t.applyMs, 0)]) tr.insertCell().textContent = v;
    }
  }

  async function poll() {
    try {
      const [st, ds] = await Promise.all([
        fetch("api/state", { cache: "no-store" }).then((r) => r.json()),
        fetch("api/decisions?limit=50", { cache: "no-store" }).then((r) => r.json()),
      ]);
      render(st);
      renderDecisions(ds);
      document.body.dataset.updated = String(Date.now());
    } catch (e) {
      setText("stage", "disconnected");
    }
  }
  poll();
  setInterval(poll, 1000);
})();
