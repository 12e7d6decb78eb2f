// quart-jobs admin dashboard: polls the JSON API every 2 s and draws the page.
// Plain JavaScript, no build step. Text from the server is inserted with textContent only.
"use strict";

(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const HOME = meta("qj-home");
  const CSRF_HEADER = meta("qj-csrf-header");
  const CSRF_TOKEN = meta("qj-csrf-token");
  const REFRESH_MS = 2000;
  const STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
  const SVG = "http://www.w3.org/2000/svg";

  let timer = null;
  let openJob = null;

  // --- talking to the API ------------------------------------------------------------------

  async function api(path, method = "GET") {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers[CSRF_HEADER] = CSRF_TOKEN;
    const response = await fetch(HOME + "api/" + path, {
      method,
      headers,
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.status === 401) {
      window.location.reload(); // the session ended: show the login form
      throw new Error("not logged in");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = body.error ? body.error.message : `HTTP ${response.status}`;
      throw new Error(message);
    }
    return body;
  }

  // --- formatting ----------------------------------------------------------------------------

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
  }

  // Times are ISO 8601 in UTC, as the command line prints them, whatever the browser's locale
  // and time zone: "2026-12-06 21:03:12 UTC"; clock() is the time of day alone ("21:03:12").
  function iso(ts) {
    return new Date(ts * 1000).toISOString();
  }

  function clock(ts) {
    if (ts === null || ts === undefined) return "–";
    return iso(ts).slice(11, 19);
  }

  function when(ts) {
    if (ts === null || ts === undefined) return "–";
    const text = iso(ts);
    return `${text.slice(0, 10)} ${text.slice(11, 19)} UTC`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function jobLink(id) {
    return el("a", {
      class: "job",
      href: `#job-${id}`,
      text: `#${id}`,
      onclick: (event) => {
        event.preventDefault();
        showJob(id);
      },
    });
  }

  function badge(state) {
    return el("span", { class: `badge state-${state}`, text: state });
  }

  // --- actions -------------------------------------------------------------------------------

  function toast(message, isError = false) {
    const box = document.getElementById("toast");
    box.textContent = message;
    box.className = isError ? "toast error" : "toast";
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (box.hidden = true), 3500);
  }

  async function act(id, action, button) {
    if (button) button.disabled = true;
    try {
      const { job } = await api(`jobs/${id}/${action}`, "POST");
      const what = action === "retry" ? "queued again" : job.state === "running"
        ? "asked to stop" : "cancelled";
      toast(`Job #${id} ${what}`);
      if (openJob === id) renderJob(job, null);
    } catch (error) {
      toast(`Job #${id}: ${error.message}`, true);
    } finally {
      if (button) button.disabled = false;
      refreshSoon(0);
    }
  }

  function actionButtons(job) {
    const buttons = [];
    if (job.state === "failed" || job.state === "cancelled") {
      buttons.push(el("button", {
        type: "button", class: "retry", "data-action": "retry", text: "Retry",
        onclick: (e) => act(job.id, "retry", e.currentTarget),
      }));
    }
    if (job.state === "queued" || (job.state === "running" && !job.cancel_requested)) {
      buttons.push(el("button", {
        type: "button", class: "danger cancel", "data-action": "cancel", text: "Cancel",
        onclick: (e) => act(job.id, "cancel", e.currentTarget),
      }));
    }
    return buttons;
  }

  // --- drawing ---------------------------------------------------------------------------------

  function renderStats(stats) {
    for (const state of STATES) {
      document.getElementById(`total-${state}`).textContent = stats.totals[state];
    }
    const body = document.querySelector("#tiers tbody");
    const rows = stats.tiers.map((tier) => {
      const counts = stats.counts[tier];
      const oldest = stats.oldest_waiting[tier];
      return el(
        "tr",
        { "data-tier": tier },
        el("td", { class: `tier-${tier}`, text: tier }),
        ...STATES.map((s) => el("td", { class: `num ${s}`, text: counts[s] })),
        el("td", { class: "num oldest", text: oldest ? duration(oldest.age_seconds) : "–" }),
      );
    });
    body.replaceChildren(...rows);
    const queues = stats.queues || {};
    const paused = new Map((stats.paused || []).map((p) => [p.queue, p]));
    const names = [...new Set([...Object.keys(queues), ...paused.keys()])].sort();
    document.querySelector("#queues tbody").replaceChildren(
      ...names.map((queue) => {
        const counts = queues[queue] || {};
        const pause = paused.get(queue);
        return el(
          "tr",
          { "data-queue": queue, class: pause ? "paused" : "" },
          el("td", { class: "queue" }, el("span", { class: "name", text: queue }), ...(pause
            ? [" ", el("span", { class: "badge state-paused", title: `paused since ${when(pause.paused_at)}`,
              text: `paused since ${clock(pause.paused_at)}` })]
            : [])),
          ...STATES.map((s) => el("td", { class: `num ${s}`, text: counts[s] || 0 })),
          el("td", { class: "actions" }, queueButton(queue, pause ? "resume" : "pause")),
        );
      }),
    );
    renderWaiting(stats.waiting || {});
  }

  // Why queued jobs are not starting: a row per queue that has any, a cell per reason (the
  // order the store tries them; "10000+" when a count reached the read's cap).
  const REASONS = ["dependency", "not_due", "paused", "unserved", "rate_limit", "concurrency"];
  function renderWaiting(waiting) {
    const names = Object.keys(waiting).sort();
    const panel = document.getElementById("waiting");
    panel.querySelector("tbody").replaceChildren(
      ...names.map((queue) => el(
        "tr",
        { "data-queue": queue },
        el("td", { class: "queue", text: queue }),
        ...REASONS.map((reason) => {
          const held = waiting[queue][reason];
          return el("td", {
            class: "num", "data-reason": reason,
            text: held ? `${held.count}${held.at_least ? "+" : ""}` : "–",
          });
        }),
      )),
    );
    panel.hidden = names.length === 0;
  }

  // Pause or resume a queue: every process stops (or starts again) taking its jobs.
  function queueButton(queue, action) {
    return el("button", {
      type: "button",
      class: action === "pause" ? "danger pause" : "resume",
      "data-action": action,
      text: action === "pause" ? "Pause" : "Resume",
      onclick: (e) => toggleQueue(queue, action, e.currentTarget),
    });
  }

  async function toggleQueue(queue, action, button) {
    if (button) button.disabled = true;
    try {
      const state = await api(`queues/${encodeURIComponent(queue)}/${action}`, "POST");
      toast(action === "pause"
        ? `Queue '${queue}' paused: ${state.queued} waiting, ${state.running} running finish`
        : `Queue '${queue}' resumed: ${state.queued} waiting start`);
    } catch (error) {
      toast(`Queue '${queue}': ${error.message}`, true);
    } finally {
      if (button) button.disabled = false;
      refreshSoon(0);
    }
  }

  function renderServing(stats) {
    const unserved = stats.unserved || [];
    const alert = document.getElementById("unserved");
    alert.querySelector("ul").replaceChildren(
      ...unserved.map((u) => el("li", { "data-queue": u.queue, "data-task": u.task, text: u.message })),
    );
    alert.hidden = unserved.length === 0;
    const workers = stats.workers || [];
    const table = document.getElementById("workers");
    table.querySelector("tbody").replaceChildren(
      ...workers.map((w) => el(
        "tr",
        { "data-worker": w.name },
        el("td", { class: "mono", text: w.name }),
        el("td", { text: w.host }),
        el("td", { class: "num", text: w.pid }),
        el("td", { class: "num", text: w.concurrency }),
        el("td", { text: w.queues === null ? "all" : w.queues.join(", ") }),
        el("td", { class: "mono tasks", title: w.tasks.join("\n"), text: w.tasks.join(", ") }),
        el("td", { class: "num", text: `${duration(w.seen_seconds_ago)} ago` }),
      )),
    );
    table.hidden = workers.length === 0;
    table.nextElementSibling.hidden = workers.length !== 0;
    document.getElementById("workers-count").textContent = String(workers.length);
  }

  function renderChart(data) {
    const width = 600, height = 170, left = 30, bottom = 18, top = 8;
    const buckets = data.buckets;
    const totals = buckets.map((b) => b.succeeded + b.failed + b.cancelled);
    const peak = Math.max(1, ...totals);
    const plotH = height - bottom - top;
    const slot = (width - left) / buckets.length;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    const add = (tag, attrs, text) => {
      const node = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      if (text !== undefined) node.textContent = text;
      svg.append(node);
      return node;
    };
    add("line", { class: "axis", x1: left, y1: top + plotH, x2: width, y2: top + plotH });
    add("line", { class: "axis", x1: left, y1: top, x2: width, y2: top, "stroke-dasharray": "3 3" });
    add("text", { x: left - 4, y: top + 8, "text-anchor": "end" }, String(peak));
    add("text", { x: left - 4, y: top + plotH, "text-anchor": "end" }, "0");
    buckets.forEach((bucket, i) => {
      let y = top + plotH;
      const x = left + i * slot + slot * 0.15;
      for (const state of ["succeeded", "failed", "cancelled"]) {
        const h = (bucket[state] / peak) * plotH;
        if (h > 0) {
          y -= h;
          const bar = add("rect", { class: `bar-${state}`, x, y, width: slot * 0.7, height: h });
          const title = document.createElementNS(SVG, "title");
          title.textContent = `${clock(bucket.start)} UTC: ${bucket[state]} ${state}`;
          bar.append(title);
        }
      }
      if (i % 5 === 0 || i === buckets.length - 1) {
        const label = i === buckets.length - 1 ? "now" : clock(bucket.start).slice(0, 5);
        add("text", { x: left + i * slot + slot / 2, y: height - 4, "text-anchor": "middle" }, label);
      }
    });
    document.getElementById("chart").replaceChildren(svg);
    const sum = totals.reduce((a, b) => a + b, 0);
    document.getElementById("chart-caption").textContent =
      `jobs finished per minute · ${sum} in the last ${buckets.length} min`;
  }

  function renderTable(id, jobs, now, cells) {
    const table = document.getElementById(id);
    const rows = jobs.map((job) =>
      el(
        "tr",
        { "data-job-id": job.id, "data-state": job.state },
        el("td", {}, jobLink(job.id)),
        el("td", { class: "mono", text: job.task }),
        el("td", { class: `tier-${job.tier}`, text: job.tier }),
        ...cells(job, now),
        el("td", { class: "actions" }, ...actionButtons(job)),
      ),
    );
    table.querySelector("tbody").replaceChildren(...rows);
    table.hidden = rows.length === 0;
    table.nextElementSibling.hidden = rows.length !== 0;
    const count = document.getElementById(`${id}-count`);
    if (count) count.textContent = jobs.length === 50 ? "50+" : String(jobs.length);
  }

  // How far a job's task said it got: a bar and its percentage (and message), or "–".
  function progressBar(job) {
    if (job.progress === null || job.progress === undefined) return "–";
    const percent = `${Math.round(job.progress * 100)}%`;
    const label = job.progress_message ? `${percent} ${job.progress_message}` : percent;
    return el(
      "span",
      { class: "progress", title: label },
      el("progress", { max: "1", value: String(job.progress), "aria-label": label }),
      ` ${label}`,
    );
  }

  function renderLists(running, failed, queued) {
    renderTable("running", running.jobs, running.now, (job, now) => [
      el("td", { class: "mono", text: job.worker || "–" }),
      el("td", { class: "num", text: duration(now - job.started_at) }),
      el("td", { class: "num", text: `${job.attempts}/${job.max_attempts}` }),
      el("td", {}, progressBar(job)),
    ]);
    renderTable("failed", failed.jobs, failed.now, (job) => [
      el("td", { text: when(job.finished_at) }),
      el("td", { class: "num", text: `${job.attempts}/${job.max_attempts}` }),
      el("td", { class: "error", title: job.error || "", text: job.error || "" }),
    ]);
    renderTable("queued", queued.jobs, queued.now, (job, now) => [
      el("td", { class: "num", text: duration(now - job.enqueued_at) }),
      el("td", { class: "num", text: `${job.attempts}/${job.max_attempts}` }),
      el("td", { class: "error", title: job.error || "", text: job.error || "" }),
    ]);
  }

  function renderSchedules(data) {
    const table = document.getElementById("schedules");
    const rows = data.schedules.map((s) =>
      el(
        "tr",
        { "data-schedule": s.name },
        el("td", { class: "mono", text: s.name }),
        el("td", { class: "mono", text: s.schedule }),
        el("td", { text: when(s.next_run_at) }),
        el("td", { class: "num", text: duration(s.next_run_at - data.now) }),
        el("td", { text: s.latest ? when(s.latest.moment) : "–" }),
        el("td", {}, ...(s.latest ? [jobLink(s.latest.id), " ", badge(s.latest.state)] : ["–"])),
      ),
    );
    table.querySelector("tbody").replaceChildren(...rows);
    table.hidden = rows.length === 0;
    table.nextElementSibling.hidden = rows.length !== 0;
    document.getElementById("schedules-count").textContent = String(rows.length);
  }

  function renderJob(job, now) {
    const drawer = document.getElementById("detail");
    document.getElementById("detail-title").replaceChildren(
      `Job #${job.id} `, badge(job.state),
    );
    drawer.querySelector(".drawer-actions").replaceChildren(...actionButtons(job));
    const fields = [
      ["Task", job.task],
      ["Tier", `${job.tier} (priority ${job.priority})`],
      ["Attempts", `${job.attempts} of ${job.max_attempts}`],
      ["Owner", job.owner || "–"],
      ["Key", job.key || "–"],
      ["Worker", job.worker || "–"],
      ["Enqueued", when(job.enqueued_at)],
      ["Runs at", when(job.run_at)],
      ["Started", when(job.started_at)],
      ["Finished", when(job.finished_at)],
      ["Timeout", job.timeout === null ? "–" : `${job.timeout}s`],
    ];
    if (job.outcome) fields.splice(3, 0, ["Outcome", job.outcome]);
    const deps = job.dependencies;
    const links = (items) =>
      items.map((d) => `#${d.id} ${d.task || "(deleted)"} ${d.state || ""}`).join(", ");
    if (deps && deps.parents.length) {
      fields.push(["Depends on", links(deps.parents)]);
      const c = deps.counts;
      fields.push(["Parents", `${c.succeeded} succeeded, ${c.failed} failed, ` +
        `${c.cancelled} cancelled, ${c.unfinished} unfinished of ${deps.parents.length}`]);
    }
    if (deps && deps.dependants.length) fields.push(["Dependants", links(deps.dependants)]);
    if (job.state === "running" && now !== null) {
      fields.push(["Elapsed", duration(now - job.started_at)]);
      fields.push(["Cancel asked", job.cancel_requested ? "yes" : "no"]);
    }
    if (job.progress !== null && job.progress !== undefined) {
      fields.push(["Progress", progressBar(job)]);
    }
    document.getElementById("detail-fields").replaceChildren(
      ...fields.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]),
    );
    document.getElementById("detail-args").textContent =
      JSON.stringify({ args: job.args, kwargs: job.kwargs }, null, 2);
    document.getElementById("detail-result").textContent =
      job.result === null ? "–" : JSON.stringify(job.result, null, 2);
    const error = [job.error, job.traceback].filter(Boolean).join("\n\n");
    document.getElementById("detail-error").textContent = error || "–";
    drawer.hidden = false;
  }

  async function showJob(id) {
    openJob = id;
    history.replaceState(null, "", `#job-${id}`);
    try {
      const { job, now } = await api(`jobs/${id}`);
      if (openJob === id) renderJob(job, now);
    } catch (error) {
      toast(error.message, true);
      closeJob();
    }
  }

  function closeJob() {
    openJob = null;
    document.getElementById("detail").hidden = true;
    history.replaceState(null, "", window.location.pathname);
  }

  // --- the refresh loop ------------------------------------------------------------------------

  let busy = false;
  let again = false;

  async function refresh() {
    if (busy) {
      again = true; // an action asked for fresh data while a refresh was under way
      return;
    }
    busy = true;
    const status = document.getElementById("status");
    try {
      const [stats, throughput, running, failed, queued] = await Promise.all([
        api("stats"),
        api("throughput?minutes=15"),
        api("jobs?state=running&limit=50"),
        api("jobs?state=failed&limit=50"),
        api("jobs?state=queued&limit=50"),
      ]);
      renderStats(stats);
      renderServing(stats);
      renderChart(throughput);
      renderLists(running, failed, queued);
      renderSchedules(await api("schedules"));
      if (openJob !== null) {
        const { job, now } = await api(`jobs/${openJob}`);
        if (openJob === job.id) renderJob(job, now);
      }
      status.textContent = `updated ${clock(stats.now)} UTC`;
      status.className = "status";
    } catch (error) {
      status.textContent = `cannot refresh: ${error.message}`;
      status.className = "status error";
    } finally {
      busy = false;
    }
    refreshSoon(again ? 0 : REFRESH_MS);
    again = false;
  }

  function refreshSoon(ms) {
    clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("detail-close").addEventListener("click", closeJob);
    document.addEventListener("keydown", (e) => e.key === "Escape" && closeJob());
    document.getElementById("find").addEventListener("submit", (event) => {
      event.preventDefault();
      const id = parseInt(document.getElementById("find-id").value, 10);
      if (id > 0) showJob(id);
    });
    const match = /^#job-(\d+)$/.exec(window.location.hash);
    if (match) showJob(parseInt(match[1], 10));
    refresh();
  });
})();
