/* The dashboard's one script (no framework, no build step).

   Each page embeds its data as JSON (projected on the server) and this script draws it; it
   then follows the page live with server-sent events and sends the actions (POSTs carrying
   the page's action token). Text from runs is only ever set as text (textContent), never
   parsed as HTML, so a "<script>" in a step's output shows as text. */
(function () {
  "use strict";

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const body = document.body;
  const exported = body.dataset.exported === "yes";
  const token = ($('meta[name="specs-action-token"]') || {}).content || "";
  const dataNode = $("#data");
  const data = dataNode ? JSON.parse(dataNode.textContent) : {};

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "on") for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  const epoch = (ts) => (ts ? Date.parse(ts) / 1000 : null);
  function seconds(value) {
    if (value === null || value === undefined || isNaN(value)) return "";
    if (value < 60) return value.toFixed(1) + " s";
    const m = Math.floor(value / 60), s = Math.floor(value % 60);
    if (m < 60) return m + " min " + String(s).padStart(2, "0") + " s";
    return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
  }
  const money = (v) => (v === null || v === undefined ? "" : "$" + Number(v).toFixed(4));
  const clock = (ts) => (ts ? ts.slice(0, 19).replace("T", " ") : "");
  const word = (status) => (status === "started" ? "running" : status);

  function liveDot(state) {
    const dot = $("#live");
    if (dot) { dot.className = "live " + state; dot.title = state === "on" ? "live" : "reconnecting"; }
  }

  /* An EventSource with named handlers; the browser reconnects by itself and sends the last
     id it saw (Last-Event-ID), from which the server catches the page up. A browser gives up
     for good when a reconnection gets an HTTP error instead of a refused connection (a server
     that is stopping answers 5xx for a moment): then a new source is opened every 2 s, with
     the last id as ?after= (a new EventSource cannot send the header). */
  function follow(url, handlers) {
    let last = "";
    let source = null;
    let stopped = false;
    const open = () => {
      if (stopped) return;
      const target = new URL(url, location.href);
      if (last) target.searchParams.set("after", last);
      source = new EventSource(target.toString(), { withCredentials: true });
      source.onopen = () => liveDot("on");
      source.onerror = () => {
        liveDot("off");
        if (source.readyState === EventSource.CLOSED) setTimeout(open, 2000);
      };
      for (const [name, fn] of Object.entries(handlers)) {
        source.addEventListener(name, (e) => {
          if (e.lastEventId) last = e.lastEventId;
          fn(JSON.parse(e.data), e);
        });
      }
    };
    open();
    return { close: () => { stopped = true; if (source) source.close(); } };
  }

  async function post(url, payload) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Specs-Token": token },
      body: JSON.stringify(payload || {}),
    });
    let answer;
    try { answer = await response.json(); } catch (e) { answer = { ok: false, error: response.statusText }; }
    return answer;
  }

  /* -- answering gates (the run page's banner and the inbox) ----------------------------- */

  function answerControls(runId, gate, options, done) {
    const box = el("div", { class: "actions" });
    const say = el("span", { class: "muted answer-msg" });
    const send = async (response) => {
      for (const b of $$("button, input", box)) b.disabled = true;
      // the inbox keeps an item being answered: its stream may drop the gate (answered in the
      // log) before this answer's response arrives
      const holder = box.closest(".item");
      if (holder) holder.classList.add("answering");
      const answer = await post(`/runs/${encodeURIComponent(runId)}/gates/${encodeURIComponent(gate)}`, { response });
      say.textContent = answer.ok ? `answered ${answer.response}: ${answer.message}` : answer.error;
      if (!answer.ok) for (const b of $$("button, input", box)) b.disabled = false;
      if (holder && !answer.ok) holder.classList.remove("answering");
      if (done) done(answer);
    };
    const verbs = ["approve", "reject", "skip", "retry", "accept_failure", "abort"];
    for (const verb of verbs) {
      if (verb !== "reject" && !options.includes(verb)) continue;
      box.append(el("button", { type: "button", class: verb === "approve" ? "primary" : verb === "abort" ? "danger" : "",
        "data-answer": verb, text: verb.replace("_", " "), on: { click: () => send(verb) } }));
    }
    for (const verb of ["guidance", "choose"]) {
      if (!options.includes(verb)) continue;
      const input = el("input", { placeholder: verb === "guidance" ? "guidance for the step" : "method, e.g. backup_1",
        "data-input": verb, size: 28 });
      box.append(input, el("button", { type: "button", "data-answer": verb, text: verb === "guidance" ? "approve with guidance" : "choose",
        on: { click: () => input.value.trim() && send(`${verb}:${input.value.trim()}`) } }));
    }
    if (exported) for (const b of $$("button, input", box)) b.disabled = true;
    box.append(say);
    return box;
  }

  function resumeButton(runId) {
    const say = el("span", { class: "muted" });
    const button = el("button", { type: "button", class: "primary", "data-resume": runId, text: "Resume the run",
      on: { click: async () => {
        button.disabled = true;
        const answer = await post(`/runs/${encodeURIComponent(runId)}/resume`, {});
        say.textContent = " " + (answer.ok ? answer.message : answer.error);
        if (!answer.ok) button.disabled = false;
      } } });
    return el("p", {}, button, say, el("span", { class: "muted", text: ` or: specs resume ${runId}` }));
  }

  /* -- notifications of new inbox items (opt-in) ------------------------------------------ */

  function notifications(onItems) {
    if (exported) return;
    const button = $("#notify");
    const can = "Notification" in window && button;
    const wanted = () => can && localStorage.getItem("specsNotify") === "1" && Notification.permission === "granted";
    let known = null;
    let started = false;
    function start() {
      if (started) return;
      started = true;
      follow("/inbox/stream", { inbox: (m) => {
        const items = m.inbox;
        if (known !== null && wanted()) {
          for (const item of items) if (!known.has(item.id)) {
            new Notification("specs: a decision waits", { body: `${item.spec} ${item.step || ""}: ${item.prompt}`, tag: item.id });
          }
        }
        known = new Set(items.map((i) => i.id));
        if (onItems) onItems(items);
      } });
    }
    if (can) {
      button.hidden = wanted();
      button.addEventListener("click", async () => {
        const answer = await Notification.requestPermission();
        if (answer === "granted") { localStorage.setItem("specsNotify", "1"); button.hidden = true; start(); }
      });
    }
    if (wanted() || onItems) start();
  }

  /* -- the runs page ------------------------------------------------------------------------ */

  function runsPage() {
    const tbody = $("#runs-body");
    const render = (rows) => {
      tbody.replaceChildren(...rows.map((r) => el("tr", { class: "r-" + r.status, "data-run": r.run_id },
        el("td", {}, el("a", { href: `/runs/${encodeURIComponent(r.run_id)}`, text: r.run_id })),
        el("td", { text: r.spec }),
        el("td", {}, el("span", { class: "badge s-" + r.status, text: r.status })),
        el("td", { text: r.goal || "" }),
        el("td", { text: clock(r.started) }),
        el("td", { class: "num", text: seconds(r.duration_s) }),
        el("td", { class: "num", text: `${r.steps_done} / ${r.steps_total}` }),
        el("td", { class: "num", text: r.tokens ? r.tokens.toLocaleString() : "" }),
        el("td", { class: "num", text: money(r.cost_usd) }))));
      $("#runs-empty").hidden = rows.length > 0;
    };
    render(data.runs);
    if (!exported) follow("/runs/stream" + location.search, { runs: (m) => render(m.runs) });
    notifications(null);
  }

  /* -- the run page ------------------------------------------------------------------------- */

  function runPage() {
    let run = data.run;
    const runId = run.run_id;
    const base = `/runs/${encodeURIComponent(runId)}`;
    const steps = new Map(data.steps.map((s) => [s.ref, s]));
    const tasks = new Map(data.tasks.map((t) => [t.ref, t]));
    const loaded = new Set(data.open_tasks);
    const rates = data.win_rates || {};
    const critical = new Set(data.critical_path || []);
    let seq = run.seq;
    let chosen = null;

    function header() {
      $("#h-status").textContent = run.status;
      $("#h-status").className = "badge s-" + run.status;
      $("#h-goal").hidden = !run.goal;
      $("#h-goal").textContent = run.goal || "";
      $("#h-mode").textContent = run.mode || "";
      $("#h-steps").textContent = `${run.steps_done} / ${run.steps_total}`;
      $("#h-tokens").textContent = run.tokens.toLocaleString();
      $("#h-cost").textContent = money(run.cost_usd);
      $("#h-bar").style.width = (run.steps_total ? (100 * run.steps_done) / run.steps_total : 0) + "%";
      const resume = $("#resume");
      if (resume) resume.hidden = run.live || !["awaiting_human", "halted", "interrupted"].includes(run.status);
      ticking();
    }
    function ticking() {
      const start = epoch(run.started);
      const end = run.ended && !run.live ? epoch(run.ended) : run.live ? Date.now() / 1000 : epoch(run.last);
      $("#h-elapsed").textContent = start ? seconds(end - start) : "";
      for (const node of $$(".step.st-started .elapsed")) {
        const s = steps.get(node.parentNode.dataset.ref);
        if (s) node.textContent = elapsed(s);
      }
    }
    function elapsed(s) {
      const start = epoch(s.started_at);
      if (!start) return "";
      const end = s.ended_at ? epoch(s.ended_at) : s.status === "started" && run.live ? Date.now() / 1000 : null;
      return end ? seconds(end - start) : "";
    }

    function chip(s, entry) {
      let mark = "";
      if (entry.kind === "gate") mark = entry.open ? " ?" : entry.response ? " " + entry.response : "";
      else if (entry.kind === "escalation") mark = " !";
      else mark = { success: " ✓", failure: " ✗", error: " ✗", running: " …", interrupted: " ⨯" }[entry.outcome] || "";
      let rate = "";
      const counts = entry.method && rates[s.ref] && rates[s.ref][entry.method];
      if (counts && entry.kind === "backup" && counts[0]) rate = ` ${counts[1]}/${counts[0]}`;
      const title = [entry.label, entry.outcome, entry.failure_reason, entry.text, (entry.reasons || []).join("; "),
        counts ? `won ${counts[1]} of ${counts[0]} earlier runs` : "", entry.duration_ms ? seconds(entry.duration_ms / 1000) : ""]
        .filter(Boolean).join(" · ");
      const classes = ["chip", "k-" + entry.kind, "o-" + (entry.outcome || (entry.open ? "open" : "done"))];
      if (entry.kind === "gate") classes.push("gate", entry.open ? "open" : "closed");
      if (entry.won) classes.push("won");
      return el("span", { class: classes.join(" "), title, "data-kind": entry.kind, "data-method": entry.method || "",
        text: entry.label + mark + rate });
    }
    function stepRow(s) {
      const lane = el("span", { class: "lane" }, ...s.lane.map((entry) => chip(s, entry)));
      const spent = [s.tokens ? s.tokens.toLocaleString() + " tok" : "", money(s.cost_usd)].filter(Boolean).join(" ");
      const row = el("div", { class: `step st-${s.status}${s.critical ? " critical" : ""}${critical.has(s.ref) ? " on-path" : ""}${chosen === s.ref ? " chosen" : ""}`,
        id: "step-" + s.ref, "data-ref": s.ref, "data-status": s.status, role: "button", tabindex: 0 },
        el("span", { class: "ref", text: s.ref }),
        el("span", { class: "badge s-" + s.status, text: word(s.status) }),
        el("span", { class: "desc", text: s.description, title: s.description + (s.message ? " — " + s.message : "") }),
        el("span", { class: "elapsed", text: elapsed(s) }), lane, el("span", { class: "spent", text: spent }));
      row.addEventListener("click", () => openStep(s.ref));
      return row;
    }
    function drawTask(ref) {
      const box = $(`[data-steps="${CSS.escape(ref)}"]`);
      const task = tasks.get(ref);
      if (!box || !task) return;
      box.replaceChildren(...task.steps.map((r) => steps.get(r)).filter(Boolean).map(stepRow));
    }
    function drawCounts(task) {
      const node = $(`[data-counts="${CSS.escape(task.ref)}"]`);
      if (!node) return;
      const c = task.counts;
      node.textContent = [`${c.completed || 0}/${task.total} done`, c.started ? `${c.started} running` : "",
        c.failed ? `${c.failed} failed` : "", c.skipped ? `${c.skipped} skipped` : ""].filter(Boolean).join(" · ");
      const details = node.closest("details");
      details.className = "task t-" + task.status;
      const badge = $("summary .badge", details);
      badge.textContent = task.status;
      badge.className = "badge s-" + task.status;
    }
    function drawStep(s) {
      const old = document.getElementById("step-" + s.ref);
      if (old) old.replaceWith(stepRow(s));
      else if (loaded.has(s.task)) drawTask(s.task);
    }
    async function loadTask(ref) {
      if (loaded.has(ref)) return;
      loaded.add(ref);
      const answer = exported || data.source === "history" ? { steps: data.steps.filter((s) => s.task === ref) }
        : await (await fetch(`${base}/tasks/${encodeURIComponent(ref)}.json`, { credentials: "same-origin" })).json();
      for (const s of answer.steps || []) if (!steps.has(s.ref) || (steps.get(s.ref).__seq || 0) <= seq) steps.set(s.ref, s);
      drawTask(ref);
    }
    function gates(list) {
      const box = $("#gates");
      box.replaceChildren(...list.map((g) => el("div", { class: "gate-item", "data-gate": g.gate },
        el("strong", { text: g.step ? `Step ${g.step} waits for you` : "The run waits for you" }),
        el("span", { class: "muted", text: ` (${g.kind.replace("_", " ")}) ` }),
        exported ? null : el("a", { href: `/inbox#${runId}--${g.gate}`, text: "in the inbox" }),
        el("p", { text: g.prompt }),
        answerControls(runId, g.gate, g.options, (answer) => {
          if (answer.ok && !answer.live) { const r = $("#resume"); if (r) r.hidden = false; }
        }))));
    }
    function line(item) {
      return el("li", { value: item[0], text: `${clock(item[1])}  ${item[2]}` });
    }
    function apply(m) {
      if (m.event !== "catch-up" && m.seq <= seq) return; // seen already
      seq = Math.max(seq, m.seq);
      run = m.run;
      for (const t of m.tasks || []) { tasks.set(t.ref, t); drawCounts(t); }
      for (const s of m.steps || []) { steps.set(s.ref, s); if (loaded.has(s.task)) drawStep(s); }
      if (m.gates) gates(m.gates);
      const list = $("#events");
      for (const item of m.lines || []) list.prepend(line(item));
      if (m.line) list.prepend(line([m.seq, m.ts, m.line]));
      while (list.children.length > 500) list.lastChild.remove();
      header();
      if (m.reload) for (const ref of Array.from(loaded)) { loaded.delete(ref); loadTask(ref); }
      if (chosen && (m.steps || []).some((s) => s.ref === chosen)) panelStep(steps.get(chosen));
      body.dataset.seq = String(seq);
    }

    /* the step panel: attempts, reasons, output (streamed while the step runs) */
    let output = null;
    const panes = new Map();
    function pane(method, attempt, stream) {
      const key = `${method}-${attempt}-${stream}`;
      let node = panes.get(key);
      if (!node) {
        const section = attemptSection({ method, attempt, label: `${method} ${attempt}` });
        section.append(el("h3", { text: stream === "calls" ? "model and tool calls" : stream }));
        node = el("pre", { class: "out" + (stream === "stderr" ? " err" : ""), "data-stream": key });
        section.append(node);
        panes.set(key, node);
      }
      return node;
    }
    function attemptSection(entry) {
      const key = `${entry.method}-${entry.attempt}`;
      let section = $(`#p-body section[data-attempt="${CSS.escape(key)}"]`);
      if (!section) {
        section = el("section", { class: "attempt", "data-attempt": key },
          el("h2", {}), el("p", { class: "muted when" }), el("p", { class: "reason" }));
        $("#p-body").append(section);
      }
      return section;
    }
    function drawAttempt(entry) {
      const section = attemptSection(entry);
      const title = $("h2", section);
      title.replaceChildren(entry.label + " ", el("span", { class: "badge o-" + (entry.outcome || "running"), text: entry.outcome || "running" }));
      if (entry.won) title.append(" ", el("span", { class: "badge won", text: "won" }));
      $(".when", section).textContent = [clock(entry.started_at), entry.duration_ms ? seconds(entry.duration_ms / 1000) : "",
        entry.exit_code !== null && entry.exit_code !== undefined ? "exit " + entry.exit_code : "",
        entry.tokens ? entry.tokens + " tokens" : ""].filter(Boolean).join(" · ");
      $(".reason", section).textContent = entry.failure_reason || "";
      return section;
    }
    function panelStep(s) {
      if (!s) return;
      $("#p-title").textContent = `Step ${s.ref}: ${word(s.status)}`;
      for (const entry of s.lane) if (["primary", "retry", "backup"].includes(entry.kind)) drawAttempt(entry);
    }
    async function openStep(ref) {
      chosen = ref;
      for (const row of $$(".step.chosen")) row.classList.remove("chosen");
      const row = document.getElementById("step-" + ref);
      if (row) row.classList.add("chosen");
      if (output) { output.close(); output = null; }
      panes.clear();
      $("#p-body").replaceChildren();
      $("#panel").hidden = false;
      const s = steps.get(ref);
      const detail = exported ? (data.details || {})[ref]
        : await (await fetch(`${base}/steps/${encodeURIComponent(ref)}.json`, { credentials: "same-origin" })).json();
      if (chosen !== ref || !detail) return;
      $("#p-body").append(el("p", { text: detail.step.description }));
      if (detail.step.message) $("#p-body").append(el("p", { class: "muted", text: detail.step.message }));
      panelStep(detail.step);
      const runningNow = !exported && run.live && !["completed", "failed", "skipped"].includes(detail.step.status);
      if (runningNow) {
        output = follow(`${base}/steps/${encodeURIComponent(ref)}/stream`, {
          reset: () => { for (const node of panes.values()) node.textContent = ""; },
          output: (m) => { for (const c of m.chunks) pane(c.method, c.attempt, c.stream).append(document.createTextNode(c.text)); },
          step: (m) => { steps.set(ref, m.step); panelStep(m.step); },
        });
        return;
      }
      for (const a of detail.attempts) {
        drawAttempt(a);
        if (a.calls && a.calls.length) pane(a.method, a.attempt, "calls").textContent = a.calls.join("\n");
        if (a.stdout) pane(a.method, a.attempt, "stdout").textContent = a.stdout;
        if (a.stderr) pane(a.method, a.attempt, "stderr").textContent = a.stderr;
      }
      if (!s) steps.set(ref, detail.step);
    }
    $("#p-close").addEventListener("click", () => {
      $("#panel").hidden = true; chosen = null;
      if (output) { output.close(); output = null; }
      for (const row of $$(".step.chosen")) row.classList.remove("chosen");
    });

    /* tabs, tasks opened and closed, filters */
    for (const button of $$(".tabs [data-tab]")) {
      button.addEventListener("click", () => {
        for (const b of $$(".tabs [data-tab]")) b.classList.toggle("here", b === button);
        for (const tab of $$(".tab")) tab.hidden = tab.id !== "tab-" + button.dataset.tab;
        if (button.dataset.tab === "timeline") { const f = $("iframe.timeline"); if (f.dataset.src) f.src = f.dataset.src; }
        if (button.dataset.tab === "graph" && !exported) {
          $("#graph").replaceChildren(el("img", { src: `${base}/graph?seq=${seq}`, alt: "the dependency graph" }));
        }
      });
    }
    for (const details of $$("details.task")) {
      details.addEventListener("toggle", () => { if (details.open) loadTask(details.dataset.task); });
    }
    $("#expand-all").addEventListener("click", () => { for (const d of $$("details.task")) d.open = true; });
    $("#collapse-all").addEventListener("click", () => { for (const d of $$("details.task")) d.open = false; });
    $("#only-problems").addEventListener("change", (e) => body.classList.toggle("only-problems", e.target.checked));
    const resumeButton = $("#resume-btn");
    if (resumeButton) resumeButton.addEventListener("click", async () => {
      resumeButton.disabled = true;
      const answer = await post(`${base}/resume`, {});
      $("#resume-msg").textContent = answer.ok ? answer.message : answer.error;
      if (!answer.ok) resumeButton.disabled = false;
    });

    for (const t of tasks.values()) drawCounts(t);
    for (const ref of loaded) drawTask(ref);
    gates(data.gates);
    for (const item of data.lines) $("#events").prepend(line(item));
    header();
    body.dataset.seq = String(seq);
    setInterval(ticking, 1000);
    // a run only the history has is followed too: its page's data again when the history changes
    if (!exported) follow(`${base}/stream?after=${seq}`, { change: apply, "catch-up": apply });
    if (location.hash.startsWith("#step-")) {
      const ref = decodeURIComponent(location.hash.slice(6));
      const s = steps.get(ref);
      const task = s ? s.task : ref.split(".").slice(0, -1).join(".");
      const d = $(`details[data-task="${CSS.escape(task)}"]`);
      if (d) d.open = true;
      openStep(ref);
    }
    notifications(null);
    body.dataset.ready = String(performance.now()); // interactive (bench/bench_dashboard.py)
  }

  /* -- the inbox ---------------------------------------------------------------------------- */

  function inboxPage() {
    const box = $("#items");
    const answered = new Set();
    function item(i) {
      const evidence = el("ul", { class: "evidence" },
        ...i.tried.map((t) => el("li", { text: `${t.label}: ${t.outcome}${t.exit_code !== null && t.exit_code !== undefined ? " (exit " + t.exit_code + ")" : ""}${t.failure_reason ? " — " + t.failure_reason : ""}` })),
        ...i.backups.map((b) => el("li", { text: `backup ${b.backup} took over (${b.trigger}): ${b.justification}` })),
        ...(i.escalation.length ? [el("li", { text: "escalation: " + i.escalation.join("; ") })] : []));
      const cli = el("details", { class: "cli" }, el("summary", { text: "the same from the command line" }),
        el("pre", { text: Object.entries(i.cli).map(([verb, command]) => `${verb.padEnd(15)} ${command}`).join("\n") }));
      const node = el("div", { class: "item" + (answered.has(i.id) ? " answered" : ""), id: i.id, "data-kind": i.kind },
        el("h3", {}, el("a", { href: "#" + i.id, text: "#", title: "a link to this item" }), " ",
          el("span", { text: `${i.spec} · ` }), el("a", { href: i.run_link, text: i.run_id }),
          el("span", { text: i.step ? ` · step ${i.step}` : "" }), " ",
          el("span", { class: "badge", text: i.lane }), " ",
          el("span", { class: "muted", text: i.live ? "the run waits now" : "the run is paused" })),
        el("p", { text: i.prompt }), i.tried.length || i.backups.length || i.escalation.length ? evidence : null,
        answerControls(i.run_id, i.gate, i.options, (answer) => {
          if (!answer.ok) return;
          answered.add(i.id);
          node.classList.add("answered");
          if (!answer.live) node.append(resumeButton(i.run_id));
        }),
        cli);
      return node;
    }
    function render(items) {
      const keep = new Map($$(".item.answered, .item.answering", box).map((n) => [n.id, n]));
      box.replaceChildren(...items.map((i) => keep.get(i.id) || item(i)));
      for (const [id, node] of keep) if (!items.some((i) => i.id === id)) box.append(node);
      $("#inbox-empty").hidden = items.length > 0 || keep.size > 0;
      if (location.hash) { const target = document.getElementById(location.hash.slice(1)); if (target) target.scrollIntoView(); }
    }
    render(data.items);
    if (!exported) notifications(render);
  }

  const page = body.dataset.page;
  if (page === "runs") runsPage();
  else if (page === "run") runPage();
  else if (page === "inbox") inboxPage();
  else notifications(null);
})();
