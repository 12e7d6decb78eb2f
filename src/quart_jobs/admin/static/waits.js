// quart-jobs admin dashboard: the waits section. Polls /api/waits every 5 s and draws, per
// tier, the p50 and p99 of the time jobs waited to start, minute by minute over the last hour
// (inline SVG, log scale, one scale for every tier so they compare), and the owners whose jobs
// waited longest. Plain JavaScript, no build step; server text goes in through textContent.
"use strict";

(() => {
  const HOME = document.querySelector('meta[name="qj-home"]').content;
  const REFRESH_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";
  const QUANTILES = ["p50", "p99"];

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  }

  function svgNode(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A wait as a person reads it: "20 ms", "5 s", "3 min", "2 h".
  function seconds(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 120) return `${Math.round(s * 10) / 10} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    return `${Math.round(s / 360) / 10} h`;
  }

  // A longest wait, to the second: "42.5 s", "5 min 2 s", "1 h 3 min".
  function exact(s) {
    if (s < 60) return seconds(s);
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }

  function clock(ts) {
    return new Date(ts * 1000).toISOString().slice(11, 16);
  }

  // The y scale shared by every tier: from the smallest bound to the bound over the highest p99.
  function scale(data) {
    const values = data.tiers.flatMap((t) => t.buckets.flatMap((b) => [b.p50, b.p99]))
      .filter((v) => v !== null);
    const low = data.bounds[0];
    const high = data.bounds.find((b) => b >= Math.max(1, ...values)) || data.bounds.at(-1);
    return { low: Math.log10(low), high: Math.log10(high) };
  }

  function chart(tier, data, range) {
    const width = 600, height = 190, left = 44, right = 6, top = 8, bottom = 18;
    const plotW = width - left - right, plotH = height - top - bottom;
    const n = tier.buckets.length;
    const x = (i) => left + (n === 1 ? plotW / 2 : (i * plotW) / (n - 1));
    const y = (v) => {
      const f = (Math.log10(Math.max(v, 10 ** range.low)) - range.low) / (range.high - range.low);
      return top + plotH * (1 - f);
    };
    const svg = svgNode("svg", {
      viewBox: `0 0 ${width} ${height}`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": `Wait p50 and p99 of tier ${tier.tier}, per minute`,
    });
    for (let e = Math.ceil(range.low); e <= Math.floor(range.high); e++) {
      const v = 10 ** e;
      svg.append(svgNode("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
      svg.append(svgNode("text", { x: left - 4, y: y(v) + 3, "text-anchor": "end" }, seconds(v)));
    }
    svg.append(svgNode("line", { class: "axis", x1: left, x2: width - right, y1: top + plotH, y2: top + plotH }));
    tier.buckets.forEach((bucket, i) => {
      if ((i % 10 === 0 && i < n - 5) || i === n - 1) {
        const last = i === n - 1;
        svg.append(svgNode("text", {
          x: x(i), y: height - 4, "text-anchor": last ? "end" : "middle",
        }, last ? "now" : clock(bucket.start)));
      }
    });
    for (const q of QUANTILES) {
      // A line through the minutes that had starts; a minute with none breaks it.
      let d = "";
      let points = 0;
      let previous = -2;
      tier.buckets.forEach((bucket, i) => {
        const v = bucket[q];
        if (v === null) return;
        d += `${i === previous + 1 ? "L" : "M"}${x(i).toFixed(1)} ${y(v).toFixed(1)} `;
        previous = i;
        points += 1;
        const dot = svgNode("circle", { class: `wait-${q}`, cx: x(i), cy: y(v), r: 2.5 });
        dot.append(svgNode("title", {}, `${clock(bucket.start)} UTC: ${q} ≤ ${seconds(v)} (${bucket.jobs} jobs)`));
        svg.append(dot);
      });
      svg.append(svgNode("path", { class: `wait-${q}`, d: d.trim(), "data-points": String(points) }));
    }
    return svg;
  }

  function render(data) {
    const range = scale(data);
    document.getElementById("wait-charts").replaceChildren(
      ...data.tiers.map((tier) => el(
        "figure",
        { class: "wait-chart", "data-tier": tier.tier },
        el(
          "figcaption",
          {},
          el("b", { text: tier.tier }),
          ` · ${tier.jobs} started · p50 ${seconds(tier.p50)} · p99 ${seconds(tier.p99)}`,
        ),
        chart(tier, data, range),
      )),
    );
    document.getElementById("wait-owners").replaceChildren(
      ...data.tiers.map((tier) => {
        const owners = tier.longest_waiting_owners;
        const table = el(
          "table",
          { class: "jobs", "data-tier": tier.tier },
          el("thead", {}, el("tr", {},
            el("th", { text: tier.tier }),
            el("th", { class: "num", text: "Longest wait" }),
            el("th", { class: "num", text: "Started" }),
            el("th", { class: "num", text: "Waiting" }))),
          el("tbody", {}, ...owners.map((o) => el(
            "tr",
            { "data-owner": o.owner },
            el("td", { class: "mono owner", text: o.owner }),
            el("td", { class: "num wait", text: exact(o.longest_wait) }),
            el("td", { class: "num", text: String(o.jobs) }),
            el("td", { class: "num waiting", text: String(o.waiting) }),
          ))),
        );
        const empty = el("p", { class: "empty", text: `No ${tier.tier} job with an owner started or waits.` });
        return el("div", {}, table, ...(owners.length ? [] : [empty]));
      }),
    );
    const minutes = data.tiers.length ? data.tiers[0].buckets.length : 0;
    document.getElementById("waits-caption").textContent =
      `from ready to start, per minute, last ${minutes} min`;
  }

  let timer = null;

  async function refresh() {
    try {
      const response = await fetch(HOME + "api/waits?minutes=60&owners=5", {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 401) return; // the session ended: the page shows the login form
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
    } catch (error) {
      document.getElementById("waits-caption").textContent = `cannot refresh: ${error.message}`;
    }
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", refresh);
})();
