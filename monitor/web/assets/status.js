// The status page's behaviour: filters kept in the URL hash, refresh in place.
// The server renders everything; this only hides rows and swaps fresh HTML in.
// When every target fits on one page ("complete") the filters hide rows here;
// when not, the server filters and pages (the same rules, monitor/web/status.py)
// and this asks it for the page the filters select.
(() => {
  "use strict";
  const doc = document;
  const byId = (id) => doc.getElementById(id);
  const form = byId("filters");
  const field = {
    project: byId("f-project"),
    environment: byId("f-environment"),
    q: byId("f-q"),
    problems: byId("f-problems"),
  };
  // Which verdicts "only problems" keeps: the server says (Verdict.is_problem).
  const PROBLEMS = new Set((doc.body.dataset.problems || "").split(" ").filter(Boolean));
  const query = new URLSearchParams(location.search);
  const fallback = Number(doc.body.dataset.refresh) || 15;
  // ?refresh=N overrides the period (tests, wall screens); 0 turns it off.
  let period = query.has("refresh") ? Number(query.get("refresh")) : fallback;
  if (!Number.isFinite(period) || period < 0) period = fallback;
  let verdicts = new Set();
  let kind = ""; // no control of its own: set from a shared link (#kind=redis)
  let page = 1;
  let lastGood = Date.now();
  let timer = 0;
  let pending = 0;
  // Every row is in the document: filtering needs no request.
  const complete = () => (byId("pager")?.dataset.complete ?? "1") === "1";

  // --- filters ---------------------------------------------------------------

  function ensureOption(select, value) {
    if (value && !Array.from(select.options).some((o) => o.value === value)) {
      select.add(new Option(`${value} (no targets now)`, value));
    }
    select.value = value;
  }

  function readHash() {
    const h = new URLSearchParams(location.hash.slice(1));
    ensureOption(field.project, h.get("project") || "");
    ensureOption(field.environment, h.get("environment") || "");
    field.q.value = h.get("q") || "";
    field.problems.checked = h.get("problems") === "1";
    verdicts = new Set((h.get("verdict") || "").split(",").filter(Boolean));
    kind = h.get("kind") || "";
    page = Math.max(1, Math.floor(Number(h.get("page"))) || 1);
  }

  function writeHash() {
    const h = new URLSearchParams();
    if (field.project.value) h.set("project", field.project.value);
    if (field.environment.value) h.set("environment", field.environment.value);
    if (field.q.value.trim()) h.set("q", field.q.value.trim());
    if (field.problems.checked) h.set("problems", "1");
    if (verdicts.size) h.set("verdict", Array.from(verdicts).join(","));
    if (kind) h.set("kind", kind);
    if (page > 1) h.set("page", String(page));
    const hash = h.toString().replace(/%2C/g, ","); // a literal comma reads back the same
    // replaceState: typing in the search box must not flood the history.
    history.replaceState(null, "", location.pathname + location.search + (hash ? `#${hash}` : ""));
  }

  function apply() {
    const project = field.project.value;
    const environment = field.environment.value;
    const words = field.q.value.toLowerCase().split(/\s+/).filter(Boolean);
    const problems = field.problems.checked;
    const rows = doc.querySelectorAll("#rows tr[data-verdict]");
    let shown = 0;
    for (const tr of rows) {
      const d = tr.dataset;
      const keep =
        (!project || d.project === project) &&
        (!environment || d.environment === environment) &&
        (!problems || PROBLEMS.has(d.verdict)) &&
        (!verdicts.size || verdicts.has(d.verdict)) &&
        (!kind || d.kind === kind) &&
        words.every((w) => d.search.includes(w));
      tr.hidden = !keep;
      if (keep) shown += 1;
    }
    for (const chip of doc.querySelectorAll("[data-chip]")) {
      chip.setAttribute("aria-pressed", String(verdicts.has(chip.dataset.chip)));
    }
    const filtered = shown !== rows.length;
    const pager = byId("pager");
    if (!complete() && pager) {
      const matched = Number(pager.dataset.matched);
      byId("shown").textContent = `${matched} matching · page ${pager.dataset.page} of ${pager.dataset.pages}`;
    } else {
      byId("shown").textContent = filtered ? `Showing ${shown} of ${rows.length}` : `${rows.length} targets`;
    }
    byId("no-match").hidden = shown !== 0 || rows.length === 0;
    doc.body.classList.toggle("filtered", filtered);
  }

  // The URL the rows come from: as loaded while complete, else the filters' page.
  function source() {
    if (complete()) return location.pathname + location.search;
    const q = new URLSearchParams(location.search);
    for (const name of ["project", "environment", "kind", "verdict", "problems", "q", "page"]) q.delete(name);
    if (field.project.value) q.set("project", field.project.value);
    if (field.environment.value) q.set("environment", field.environment.value);
    if (kind) q.set("kind", kind);
    if (verdicts.size) q.set("verdict", Array.from(verdicts).join(","));
    if (field.problems.checked) q.set("problems", "1");
    if (field.q.value.trim()) q.set("q", field.q.value.trim());
    if (page > 1) q.set("page", String(page));
    return `${location.pathname}?${q.toString()}`;
  }

  function fetchSoon() {
    // Typing in the search box asks once it pauses, not at every key.
    clearTimeout(pending);
    pending = setTimeout(refresh, 250);
  }

  function changed() {
    page = 1;
    writeHash();
    apply();
    if (!complete()) fetchSoon();
  }

  function clearAll() {
    field.project.value = "";
    field.environment.value = "";
    field.q.value = "";
    field.problems.checked = false;
    verdicts = new Set();
    changed();
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    clearAll();
  });
  byId("no-match-clear").addEventListener("click", clearAll);
  // Pager links work without JavaScript too; with it, the page is fetched in place.
  doc.addEventListener("click", (event) => {
    const link = event.target.closest("#pager a[data-page]");
    if (!link) return;
    event.preventDefault();
    page = Math.max(1, Number(link.dataset.page) || 1);
    writeHash();
    refresh();
  });
  // Chips are re-rendered by every refresh, hence one delegated listener.
  doc.addEventListener("click", (event) => {
    const chip = event.target.closest("[data-chip]");
    if (!chip) return;
    const verdict = chip.dataset.chip;
    if (!verdicts.delete(verdict)) verdicts.add(verdict);
    changed();
  });
  doc.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(doc.activeElement.tagName);
    if (event.key === "/" && !typing) {
      event.preventDefault();
      field.q.focus();
    } else if (event.key === "Escape" && doc.activeElement === field.q) {
      field.q.value = "";
      changed();
    }
  });
  window.addEventListener("hashchange", () => {
    readHash();
    apply();
  });

  // --- tab icon: a dot in the colour of the worst verdict ---------------------

  function favicon() {
    const canvas = doc.createElement("canvas");
    canvas.width = canvas.height = 32;
    const g = canvas.getContext("2d");
    if (!g) return;
    const worst = doc.body.dataset.worst || "pending";
    g.fillStyle = getComputedStyle(doc.documentElement).getPropertyValue(`--${worst}`).trim() || "#888";
    g.beginPath();
    g.arc(16, 16, 13, 0, 2 * Math.PI);
    g.fill();
    doc.querySelector("link[rel=icon]").href = canvas.toDataURL("image/png");
  }

  // --- refresh in place ------------------------------------------------------

  const clock = (ms) => new Date(ms).toISOString().slice(11, 19);

  function syncOptions(select, fresh) {
    const values = (options) => Array.from(options, (o) => o.value).join("\n");
    // Left alone unless the choices changed, so an open dropdown stays open.
    if (values(select.options) === values(fresh.options)) return;
    const value = select.value;
    select.replaceChildren(...Array.from(fresh.options, (o) => new Option(o.text, o.value)));
    ensureOption(select, value);
  }

  function swap(fresh) {
    for (const id of ["rows", "facts", "pager"]) {
      byId(id).replaceWith(doc.importNode(fresh.getElementById(id), true));
    }
    // The summary is aria-live: replace it only when it says something new.
    // (Compared by text and tone: chips' aria-pressed differs from the server's.)
    const summary = fresh.getElementById("summary");
    const current = byId("summary");
    if (summary.textContent !== current.textContent || summary.className !== current.className) {
      byId("summary").replaceWith(doc.importNode(summary, true));
    }
    syncOptions(field.project, fresh.getElementById("f-project"));
    syncOptions(field.environment, fresh.getElementById("f-environment"));
    doc.title = fresh.title;
    doc.body.dataset.generated = fresh.body.dataset.generated;
    doc.body.dataset.worst = fresh.body.dataset.worst;
    apply();
    favicon();
  }

  function showLive(ok, problem) {
    const live = byId("live");
    const offline = byId("offline");
    if (ok) {
      lastGood = Date.now();
      live.textContent = period ? `Live · updated ${clock(lastGood)} UTC · every ${period} s` : "Auto-refresh off";
      live.classList.remove("lost");
      offline.hidden = true;
      return;
    }
    live.textContent = `Refresh failed at ${clock(Date.now())} UTC`;
    live.classList.add("lost");
    offline.hidden = false;
    offline.textContent =
      `Cannot reach the monitor (${problem}): what you see is from ${clock(lastGood)} UTC, ` +
      `${Math.round((Date.now() - lastGood) / 1000)} s ago. Retrying every ${period} s.`;
  }

  function selecting() {
    const selection = doc.getSelection();
    return Boolean(selection && !selection.isCollapsed && byId("targets").contains(selection.anchorNode));
  }

  async function refresh() {
    clearTimeout(timer);
    // Swapping the rows would drop text someone is selecting to copy: wait.
    if (selecting()) {
      byId("live").textContent = "Paused while text is selected";
      schedule();
      return;
    }
    const abort = new AbortController();
    const deadline = setTimeout(() => abort.abort(), Math.max(period, 5) * 1000);
    try {
      const response = await fetch(source(), {
        cache: "no-cache", // revalidated: 304 (ETag) when nothing changed
        headers: { Accept: "text/html" },
        signal: abort.signal,
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      if (!fresh.getElementById("rows")) throw new Error("not a status page");
      swap(fresh);
      showLive(true);
    } catch (err) {
      showLive(false, err.name === "AbortError" ? "timed out" : err.message || String(err));
    } finally {
      clearTimeout(deadline);
      schedule();
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (period > 0) timer = setTimeout(refresh, period * 1000);
  }

  // Background tabs are throttled; catch up as soon as the tab is looked at.
  doc.addEventListener("visibilitychange", () => {
    if (doc.visibilityState === "visible" && period > 0 && Date.now() - lastGood > period * 1000) {
      refresh();
    }
  });

  form.hidden = false;
  doc.body.classList.add("js");
  readHash();
  apply();
  // A shared link's filters select rows the server did not send: ask for them.
  if (!complete() && source() !== location.pathname + location.search) refresh();
  favicon();
  showLive(true);
  schedule();
})();
