// OpenHands panel: one table of every tracked conversation and a launch form.
// All server text goes in with textContent; links only for http(s).

const CAN_STOP = new Set(["queued", "starting", "running", "idle", "waiting", "finished", "stuck"]);

function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function safeUrl(url) {
  try {
    const parsed = new URL(String(url || ""));
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (e) {
    return null;
  }
}

function duration(ms) {
  if (!(ms >= 0)) return "";
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  if (m >= 60) return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

function render({ model, el }) {
  const root = h("div", "ohj-panel");
  el.appendChild(root);
  const head = h("div", "ohj-panel-head", "OpenHands conversations");
  const counts = h("span", "ohj-counts");
  head.appendChild(counts);
  const wrap = h("div", "ohj-table-wrap");
  const table = h("table", "ohj-table");
  const thead = h("thead");
  const hr = h("tr");
  for (const label of ["Status", "Title", "Repository", "Elapsed", "Cost", "Link", "Actions"]) {
    hr.appendChild(h("th", null, label));
  }
  thead.appendChild(hr);
  const tbody = h("tbody");
  table.append(thead, tbody);
  wrap.appendChild(table);
  const empty = h("div", "ohj-phase", "No tracked conversations yet: launch one below or with %openhands.");

  const form = h("form", "ohj-form");
  const task = h("input", "ohj-input");
  task.placeholder = "Task for the agent…";
  task.name = "task";
  const repo = h("input", "ohj-input ohj-small");
  repo.placeholder = "owner/repo (optional)";
  repo.name = "repository";
  const branch = h("input", "ohj-input ohj-small");
  branch.placeholder = "branch (optional)";
  branch.name = "branch";
  const launch = h("button", "ohj-btn ohj-primary", "Launch");
  launch.type = "submit";
  form.append(task, repo, branch, launch);
  for (const input of [task, repo, branch]) input.addEventListener("keydown", (e) => e.stopPropagation());
  const message = h("div", "ohj-action-error");
  root.append(head, wrap, empty, form, message);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!task.value.trim()) {
      message.textContent = "Say what the agent should do.";
      message.style.display = "";
      return;
    }
    launch.disabled = true;
    model.send({ action: "launch", task: task.value, repository: repo.value, branch: branch.value });
  });

  const elapsedCells = [];

  function actionButton(label, action, key, enabled) {
    const b = h("button", "ohj-btn", label);
    b.type = "button";
    b.disabled = !enabled;
    b.addEventListener("click", () => {
      b.disabled = true;
      model.send({ action, key });
    });
    return b;
  }

  function renderRows() {
    const rows = model.get("rows") || [];
    elapsedCells.length = 0;
    const frag = document.createDocumentFragment();
    const tally = {};
    for (const r of rows) {
      tally[r.status] = (tally[r.status] || 0) + 1;
      const tr = h("tr", "ohj-row");
      tr.dataset.status = r.status;
      const pillCell = h("td");
      const pill = h("span", `ohj-pill ohj-s-${String(r.status).replace(/[^a-z_]/g, "")}`, r.status);
      pillCell.appendChild(pill);
      const titleCell = h("td", "ohj-cell-title", r.title || r.task || "");
      titleCell.title = r.detail || r.task || "";
      const repoCell = h("td", null, r.repository ? `${r.repository}${r.branch ? "@" + r.branch : ""}` : "");
      const elapsedCell = h("td");
      elapsedCells.push([elapsedCell, r]);
      const costCell = h("td", null, typeof r.cost === "number" ? `$${r.cost.toFixed(2)}` : "");
      const linkCell = h("td");
      const url = safeUrl(r.url);
      if (url) {
        const a = h("a", "ohj-link", r.id ? r.id.slice(0, 8) : "open");
        a.href = url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        linkCell.appendChild(a);
      }
      const act = h("td");
      if (r.status === "queued") act.appendChild(actionButton("Cancel", "cancel", r.key, true));
      else act.appendChild(actionButton("Stop", "stop", r.key, CAN_STOP.has(r.status)));
      act.appendChild(actionButton("Resume", "resume", r.key, r.status === "paused"));
      act.appendChild(actionButton("Untrack", "untrack", r.key, true));
      tr.append(pillCell, titleCell, repoCell, elapsedCell, costCell, linkCell, act);
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    counts.textContent = Object.entries(tally).map(([k, v]) => `${v} ${k}`).join(" · ");
    wrap.style.display = rows.length ? "" : "none";
    empty.style.display = rows.length ? "none" : "";
    tick();
  }

  function tick() {
    const now = Date.now();
    for (const [cell, r] of elapsedCells) {
      cell.textContent = r.started_at ? duration((r.ended_at || now) - r.started_at) : "";
    }
  }

  function onMessage() {
    const text = model.get("message") || "";
    message.textContent = text;
    message.style.display = text ? "" : "none";
    launch.disabled = !!model.get("busy");
    if (!model.get("busy") && !text) task.value = "";
  }

  model.on("change:rows", renderRows);
  model.on("change:message", onMessage);
  model.on("change:busy", onMessage);
  const timer = setInterval(tick, 1000);
  renderRows();
  onMessage();
  return () => {
    clearInterval(timer);
    model.off("change:rows", renderRows);
    model.off("change:message", onMessage);
    model.off("change:busy", onMessage);
  };
}

export default { render };
