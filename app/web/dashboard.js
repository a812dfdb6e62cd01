// The operator dashboard: checkpoints and activation, retrains followed live, recent jobs,
// the process's own metrics and training curves. Every figure comes from an /admin call
// carrying the token the operator signs in with (kept for this browser tab only).
"use strict";

(() => {
  const { ApiError, call, el, number } = nextitem;
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "nextitem-admin-token";
  const REFRESH_MS = 2000;
  const JOB_POLL_MS = 1000;
  const FINISHED = new Set(["succeeded", "rejected", "failed"]);
  const SECTIONS = ["service", "models", "retrain", "curve", "jobs"];

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    previous: null,      // the last metrics summary, for request rates
    refreshing: false,
    timer: null,
    job: null,           // the job followed live (started here or found under way)
    curveVersion: null,
    curveUrl: null,
  };

  async function admin(path, options = {}) {
    try {
      return await call(path, { ...options, headers: { Authorization: `Bearer ${state.token}` } });
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) signOut(err.message);
      throw err;
    }
  }

  function time(unixSeconds) {
    if (!unixSeconds) return "–";
    return new Date(unixSeconds * 1000).toLocaleTimeString("en-GB");
  }

  function badge(text, tone) { return el("span", { class: `badge ${tone}` }, text); }

  // ---- signing in and out ------------------------------------------------------------------------

  function show(on) {
    for (const id of SECTIONS) $(id).hidden = !on;
    $("sign-out").hidden = !on;
  }

  function signOut(message = "") {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(state.timer);
    show(false);
    for (const id of ["models-table", "processes-table", "jobs-table", "routes"]) {
      $(id).tBodies[0].replaceChildren();
    }
    $("serving").textContent = "–";
    $("auth-message").textContent = message;
  }

  async function signIn(token) {
    state.token = token;
    $("auth-message").textContent = "";
    try {
      await refresh();
    } catch (err) {
      if (state.token) $("auth-message").textContent = err.message;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    show(true);
    clearInterval(state.timer);
    state.timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  }

  // ---- checkpoints -------------------------------------------------------------------------------

  function metricsText(metrics) {
    const parts = Object.entries(metrics || {})
      .filter(([, v]) => typeof v === "number")
      .slice(0, 4)
      .map(([k, v]) => `${k} ${number(v, 4)}`);
    return parts.join(", ") || "–";
  }

  function gateCell(gate) {
    if (!gate) return el("td", {}, "–");
    return el("td", {}, badge(gate.passed ? "passed" : "rejected", gate.passed ? "ok" : "bad"), " ",
      el("span", { class: "muted" }, `${gate.metric || ""} ${gate.rule || ""}`));
  }

  function renderModels(view, processes) {
    $("serving").textContent = view.serving || "no model";
    const rows = view.versions.map((v) => {
      const status = el("td", {});
      if (v.current) status.append(badge("current", "ok"), " ");
      if (v.version === view.serving) status.append(badge("served here", "ok"), " ");
      const servedBy = processes.filter((p) => p.version === v.version).length;
      if (servedBy && processes.length > 1) {
        status.append(el("span", { class: "muted" }, `by ${servedBy} of ${processes.length} processes`));
      }
      return el("tr", { dataset: { version: v.version, current: v.current } },
        el("td", {}, el("code", {}, v.version)),
        el("td", {}, v.kind || "–"),
        el("td", {}, v.created || "–"),
        el("td", {}, metricsText(v.metrics)),
        gateCell(v.gate),
        status,
        el("td", {},
          el("button", { type: "button", class: "quiet", dataset: { action: "activate" },
                         disabled: v.current && v.version === view.serving,
                         "aria-label": `Activate ${v.version}` }, v.current ? "Reload" : "Activate"),
          " ",
          el("button", { type: "button", class: "quiet", dataset: { action: "curve" },
                         "aria-label": `Training curve of ${v.version}` }, "Curve")));
    });
    $("models-table").tBodies[0].replaceChildren(...rows);
    if (state.curveVersion === null && view.current) showCurve(view.current);
  }

  function renderProcesses(processes) {
    const rows = processes.map((p) => el("tr", { dataset: { process: p.process, version: p.version || "" } },
      el("td", {}, el("code", {}, p.process), p.this ? " (this one)" : ""),
      el("td", {}, p.version ? el("code", {}, p.version) : badge("no model", "bad")),
      el("td", {}, time(p.started)),
      el("td", {}, time(p.seen)),
      el("td", {}, p.model_error || "")));
    $("processes-table").tBodies[0].replaceChildren(...rows);
  }

  async function activate(version) {
    $("models-message").textContent = `Activating ${version}…`;
    try {
      const done = await admin(`/admin/models/${encodeURIComponent(version)}/activate`, { method: "POST" });
      $("models-message").textContent =
        `${done.version} is current (was ${done.previous || "none"})` +
        (done.announced ? "; every API process was told." : "; other processes follow within seconds.");
    } catch (err) {
      $("models-message").textContent = `Not activated: ${err.message}`;
    }
    await refresh().catch(() => {});
  }

  async function showCurve(version) {
    state.curveVersion = version;
    const img = $("curve-img");
    const response = await fetch(`/admin/models/${encodeURIComponent(version)}/training.png`,
      { headers: { Authorization: `Bearer ${state.token}` } });
    if (state.curveVersion !== version) return;
    if (!response.ok) {
      img.hidden = true;
      $("curve-caption").textContent = `No training curve for ${version} (the trainer drew none).`;
      return;
    }
    if (state.curveUrl) URL.revokeObjectURL(state.curveUrl);
    state.curveUrl = URL.createObjectURL(await response.blob());
    img.src = state.curveUrl;
    img.alt = `Training curve of ${version}: loss and validation figures by epoch`;
    img.hidden = false;
    $("curve-caption").textContent = `Version ${version}`;
  }

  // ---- jobs --------------------------------------------------------------------------------------

  function stateBadge(s) {
    const tone = s === "succeeded" ? "ok" : s === "failed" || s === "rejected" ? "bad" : "warn";
    return badge(s, tone);
  }

  function renderJobs(jobs) {
    $("jobs-table").tBodies[0].replaceChildren(...jobs.map(jobRow));
  }

  function jobRow(j) {
    return el("tr", { dataset: { jobId: j.job_id, state: j.state } },
      el("td", {}, time(j.created)),
      el("td", {}, el("code", { title: j.job_id }, j.job_id.slice(0, 8))),
      el("td", {}, j.request.model),
      el("td", {}, stateBadge(j.state)),
      el("td", {}, j.stage),
      el("td", { class: "num" }, `${Math.round(j.progress * 100)}%`),
      el("td", {}, j.version ? el("code", {}, j.version) : "–"),
      el("td", {}, j.finished && j.started ? `${number(j.finished - j.started, 0)} s` : "–"),
      el("td", {}, j.error ? j.error.slice(0, 160) : ""));
  }

  function renderLiveJob(job) {
    const listed = $("jobs-table").querySelector(`tr[data-job-id="${job.job_id}"]`);
    if (listed) listed.replaceWith(jobRow(job));  // the list keeps pace with the live view
    $("job-live").hidden = false;
    $("job-id").textContent = job.job_id;
    $("job-state").replaceChildren(stateBadge(job.state));
    $("job-live").dataset.state = job.state;
    $("job-progress").value = job.progress;
    $("job-percent").textContent = `${Math.round(job.progress * 100)}%`;
    $("job-stage").textContent = job.stage;
    let result = "";
    if (job.state === "succeeded") result = `Version ${job.version} is now current.`;
    else if (job.state === "rejected") {
      const gate = (job.metrics && job.metrics.gate) || {};
      result = `Version ${job.version} was written but not activated: the gate asks ${gate.rule || "more"}.`;
    } else if (job.state === "failed") result = `Failed: ${job.error || "no reason given"}`;
    $("job-result").textContent = result;
  }

  /** Shows one job's state, stage and progress live until it ends (or another is followed). */
  async function followJob(jobId) {
    state.job = jobId;
    try {
      while (state.job === jobId && state.token) {
        const job = await admin(`/admin/jobs/${jobId}`);
        renderLiveJob(job);
        if (FINISHED.has(job.state)) {
          state.job = null;
          refresh().catch(() => {});
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
      }
    } finally {
      if (state.job === jobId) state.job = null;
    }
  }

  async function startRetrain(event) {
    event.preventDefault();
    let params;
    try {
      params = JSON.parse($("retrain-params").value || "{}");
      if (params === null || typeof params !== "object" || Array.isArray(params)) throw new Error("not an object");
    } catch (err) {
      $("job-live").hidden = false;
      $("job-result").textContent = `The hyperparameters are not a JSON object: ${err.message}`;
      $("retrain-params").focus();
      return;
    }
    const body = { model: $("retrain-model").value, params,
                   min_item_support: Number($("retrain-support").value || 5) };
    if ($("retrain-gate").value !== "") body.gate_ratio = Number($("retrain-gate").value);
    try {
      const accepted = await admin("/admin/retrain", { method: "POST", body });
      $("job-result").textContent = "";
      followJob(accepted.job_id).catch((err) => { $("job-result").textContent = err.message; });
    } catch (err) {
      $("job-live").hidden = false;
      $("job-result").textContent = `Not started: ${err.message}`;
    }
  }

  // ---- the service's own metrics -----------------------------------------------------------------

  function pairs(id, entries, empty) {
    const items = entries.length ? entries : [[empty, ""]];
    $(id).replaceChildren(...items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  /**
   * The q quantile of a cumulative histogram (the last count unbounded), interpolated inside
   * its bucket as Prometheus does; null when it holds nothing. The server's bucket_quantile.
   */
  function quantile(q, bounds, counts) {
    const total = counts[counts.length - 1];
    if (!(total > 0)) return null;
    const rank = q * total;
    let lower = 0;
    let below = 0;
    for (let i = 0; i < counts.length; i++) {
      const upper = i < bounds.length ? bounds[i] : Infinity;
      if (counts[i] >= rank && counts[i] > below) {
        return upper === Infinity ? lower : lower + ((upper - lower) * (rank - below)) / (counts[i] - below);
      }
      lower = upper;
      below = counts[i];
    }
    return lower;
  }

  function renderSummary(s) {
    // rates compare two readings of one process (several may answer behind a load balancer)
    const before = state.previous && state.previous.process === s.process ? state.previous : null;
    const elapsed = before ? s.taken_at - before.taken_at : 0;
    const earlier = new Map((before ? before.routes : []).map((r) => [`${r.method} ${r.route}`, r]));
    pairs("service-facts", [
      ["process", el("code", {}, s.process)],
      ["model", s.model_version || "none"], ["kind", s.model_kind || "–"],
      ["items indexed", number(s.index_items, 0)],
      ["index", s.index || "–"],
      ["store", badge(s.store, s.store === "ok" ? "ok" : "bad")],
      ["swaps", Object.entries(s.swaps).map(([k, v]) => `${k} ${v}`).join(", ") || "0"],
    ], "");
    pairs("events", Object.entries(s.events).map(([k, v]) => [`events ${k}`, number(v, 0)]), "no events yet");
    pairs("fallbacks", Object.entries(s.fallbacks).map(([k, v]) => [`fallback ${k}`, number(v, 0)]), "no fallbacks");
    const rows = s.routes.map((r) => {
      const key = `${r.method} ${r.route}`;
      const then = before ? earlier.get(key) || { requests: 0, histogram: r.histogram.map(() => 0) } : null;
      const rate = then && elapsed > 0 ? (r.requests - then.requests) / elapsed : null;
      const recent = then ? r.histogram.map((count, i) => count - then.histogram[i]) : [0];
      const now = (q) => quantile(q, s.latency_bounds_ms, recent);
      return el("tr", { dataset: { route: key } },
        el("th", { scope: "row" }, el("code", {}, key)),
        el("td", { class: "num" }, number(r.requests, 0)),
        el("td", { class: "num" }, rate === null ? "–" : number(rate, 1)),
        el("td", { class: "num", dataset: { p: "50" } }, number(now(0.5), 2)),
        el("td", { class: "num" }, number(now(0.95), 2)),
        el("td", { class: "num" }, number(now(0.99), 2)),
        el("td", { class: "num" }, number(r.p99_ms, 2)),
        el("td", { class: "num" }, number(r.errors, 0)));
    });
    $("routes").tBodies[0].replaceChildren(...rows);
    state.previous = s;
  }

  async function refresh() {
    if (state.refreshing) return;
    state.refreshing = true;
    try {
      const [models, processes, jobs, summary] = await Promise.all([
        admin("/admin/models"), admin("/admin/processes"), admin("/admin/jobs"),
        admin("/admin/metrics/summary")]);
      renderModels(models, processes);
      renderProcesses(processes);
      renderJobs(jobs);
      // a job under way that this page did not start (another tab, a reload, a script): follow it
      const live = jobs.find((j) => !FINISHED.has(j.state));
      if (live && state.job === null) followJob(live.job_id).catch(() => {});
      renderSummary(summary);
    } finally {
      state.refreshing = false;
    }
  }

  // ---- wiring ------------------------------------------------------------------------------------

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("retrain-form").addEventListener("submit", startRetrain);
  $("models-table").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const version = button.closest("tr").dataset.version;
    if (button.dataset.action === "activate") activate(version);
    else showCurve(version).catch((err) => { $("curve-caption").textContent = err.message; });
  });
  if (state.token) signIn(state.token);
})();
