// OpenHands widgets: the conversation card and the panel. Everything from the server is set
// with textContent, links only for http(s); actions go to Python as model.send() messages.

// What a status means and allows comes from Python (state.rules / row.rules): this file only draws.
const NO_RULES = { label: "unknown", style: "unknown" };
const FEED_COLLAPSED = 6;

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
  const hr = Math.floor(m / 60);
  if (hr) return `${hr}h ${String(m % 60).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

const ICON = { command: "$", output: "›", edit: "✎", read: "◎", plan: "☰", message: "»", finish: "✔", error: "✖", state: "•", action: "→", rejected: "⊘", note: "!" };

function count(n) {
  if (typeof n !== "number") return "";
  return n >= 10000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

// "$0.04 · 3.6k in / 102 out tokens": what the server reported, nothing where it reported none
function usageText(cost, tokens) {
  const parts = [];
  if (typeof cost === "number") parts.push(`$${cost.toFixed(2)}`);
  if (tokens && (typeof tokens.prompt === "number" || typeof tokens.completion === "number")) {
    parts.push(`${count(tokens.prompt) || "?"} in / ${count(tokens.completion) || "?"} out tokens`);
  }
  return parts.join(" · ");
}

// the panel's short form: "$0.04 · 3.7k tok", the split in its tooltip
function usageShort(cost, tokens) {
  const parts = [];
  if (typeof cost === "number") parts.push(`$${cost.toFixed(2)}`);
  if (tokens) {
    const sum = (typeof tokens.prompt === "number" ? tokens.prompt : 0) + (typeof tokens.completion === "number" ? tokens.completion : 0);
    if (sum) parts.push(`${count(sum)} tok`);
  }
  return parts.join(" · ");
}

function costCell(cost, tokens) {
  const cell = h("td", "ohj-cell-cost", usageShort(cost, tokens));
  cell.title = usageText(cost, tokens);
  return cell;
}

// the server's words for a status, as the card's pill says them
const STATE_WORDS = { waiting_for_confirmation: "waiting for your approval" };

function feedItem(ev) {
  const row = h("li", `ohj-ev ohj-ev-${ev.type}`);
  row.appendChild(h("span", "ohj-ev-icon", ICON[ev.type] || "•"));
  let text = String(ev.text || "");
  if (ev.type === "state") text = `status: ${STATE_WORDS[text] || text.replace(/_/g, " ")}`;
  if (ev.type === "message" && ev.source === "user") text = `you: ${text}`;
  if (ev.type === "rejected") text = `rejected: ${text}`;
  const body = h("span", "ohj-ev-text", text.length > 600 ? text.slice(0, 599) + "…" : text);
  row.appendChild(body);
  if (ev.timed_out) {
    row.appendChild(h("span", "ohj-exit ohj-bad", "timed out"));
  } else if (ev.exit_code !== null && ev.exit_code !== undefined) {
    row.appendChild(h("span", `ohj-exit ${ev.exit_code === 0 ? "ohj-ok" : "ohj-bad"}`, `exit ${ev.exit_code}`));
  }
  return row;
}

// The feed arrives as messages, not as a synced list: the new events only, and the whole
// (bounded) feed when a view shows up. Every view of one model shares one copy.
function feedStore(model) {
  if (!model.__ohjFeed) {
    const store = { items: [], ids: new Set(), listeners: new Set() };
    model.on("msg:custom", (msg) => {
      if (!msg || !Array.isArray(msg.feed)) return;
      if (msg.reset) {
        store.items = [];
        store.ids = new Set();
      }
      for (const ev of msg.feed) {
        if (!ev || store.ids.has(ev.id)) continue;
        store.ids.add(ev.id);
        store.items.push(ev);
      }
      const limit = typeof msg.limit === "number" ? msg.limit : 200;
      if (store.items.length > limit) {
        for (const ev of store.items.splice(0, store.items.length - limit)) store.ids.delete(ev.id);
      }
      for (const fn of store.listeners) fn();
    });
    model.__ohjFeed = store;
  }
  return model.__ohjFeed;
}

// What the user opened (diffs, the whole feed) lives in a synced trait: a view drawn again
// (the output refreshed at the end, a second view) shows the same.
function viewState(model) {
  return model.get("view_state") || {};
}

function saveViewState(model, patch) {
  try {
    model.set("view_state", { ...viewState(model), ...patch });
    model.save_changes();
  } catch (e) {
    // the kernel is gone: the view keeps its own state
  }
}

// Diffs arrive as answers to a view's request; every view of one model shares them.
function diffStore(model) {
  if (!model.__ohjDiffs) {
    const open = new Set(Array.isArray(viewState(model).open) ? viewState(model).open : []);
    const store = { byPath: new Map(), open, listeners: new Set(), seq: 0, asked: new Map() };
    // only the answer to the latest request for a file counts (answers may cross)
    store.ask = (path, all) => {
      store.seq += 1;
      store.asked.set(path, store.seq);
      model.send({ diff: path, all: !!all, seq: store.seq });
    };
    // files shown inline (an image, an HTML page, Markdown), by path: what Python sent
    store.views = new Map();
    store.view = (path) => {
      store.views.set(path, { loading: true });
      model.send({ view_file: path });
      for (const fn of store.listeners) fn();
    };
    model.on("msg:custom", (msg) => {
      if (msg && typeof msg.file_view === "string") {
        store.views.set(msg.file_view, msg);
        for (const fn of store.listeners) fn();
        return;
      }
      if (!msg || typeof msg.diff_of !== "string") return;
      if (store.asked.get(msg.diff_of) !== msg.seq) return;
      store.byPath.set(msg.diff_of, msg);
      for (const fn of store.listeners) fn();
    });
    model.__ohjDiffs = store;
  }
  return model.__ohjDiffs;
}

const CHANGE_MARK = { added: "A", updated: "M", deleted: "D", moved: "R" };

function diffLine(line) {
  let cls = "ohj-d-ctx";
  if (line.startsWith("+++") || line.startsWith("---")) cls = "ohj-d-file";
  else if (line.startsWith("@@")) cls = "ohj-d-hunk";
  else if (line.startsWith("+")) cls = "ohj-d-add";
  else if (line.startsWith("-")) cls = "ohj-d-del";
  return h("div", `ohj-d ${cls}`, line);
}

// The Changes section: each changed file with its status and line counts; a click opens its
// coloured diff (asked of Python then, cut to the first lines until "Show all").
// what a click on "View" shows of a changed file, none of it able to run: an image as a
// picture, an HTML page in a frame that allows nothing, anything else as text
const VIEWABLE = /\.(png|jpe?g|gif|webp|svg|html?|md|markdown)$/i;

function fileView(path, shown) {
  const box = h("div", "ohj-file-view");
  if (shown.loading) box.appendChild(h("div", "ohj-changes-note", "Reading the file…"));
  else if (shown.error) box.appendChild(h("div", "ohj-action-error", shown.error));
  else if (shown.kind === "image") {
    const img = h("img", "ohj-file-image");
    img.alt = path;
    img.src = `data:${shown.mime};base64,${shown.data}`;
    box.appendChild(img);
  } else if (shown.kind === "html") {
    const frame = h("iframe", "ohj-file-frame");
    frame.setAttribute("sandbox", "");
    frame.title = path;
    frame.srcdoc = String(shown.data || "");
    box.appendChild(frame);
  } else box.appendChild(h("pre", "ohj-file-text", String(shown.data || "")));
  return box;
}

function changesSection(model) {
  const box = h("div", "ohj-changes");
  const head = h("div", "ohj-changes-head");
  const note = h("div", "ohj-changes-note");
  const list = h("ul", "ohj-changes-list");
  box.append(head, note, list);
  const store = diffStore(model);
  const ask = (path, all) => store.ask(path, all);

  function fileRow(file) {
    const li = h("li", "ohj-change");
    const row = h("button", "ohj-change-row");
    row.type = "button";
    const isOpen = store.open.has(file.path);
    row.setAttribute("aria-expanded", isOpen ? "true" : "false");
    row.append(
      h("span", "ohj-change-caret", isOpen ? "▾" : "▸"),
      h("span", `ohj-change-mark ohj-change-${CHANGE_MARK[file.status] ? file.status : "updated"}`, CHANGE_MARK[file.status] || "M"),
      h("span", "ohj-change-path", file.path),
    );
    const counts = h("span", "ohj-change-counts");
    if (typeof file.added === "number") counts.append(h("span", "ohj-d-add-n", `+${file.added}`), h("span", "ohj-d-del-n", `−${file.removed}`));
    row.append(counts);
    row.addEventListener("click", () => {
      if (store.open.has(file.path)) store.open.delete(file.path);
      else store.open.add(file.path);
      saveViewState(model, { open: [...store.open] });
      for (const fn of store.listeners) fn();
    });
    li.appendChild(row);
    if (VIEWABLE.test(file.path) && file.status !== "deleted") {
      const shown = store.views.get(file.path);
      const viewBtn = h("button", "ohj-linkbtn ohj-view-file", shown ? "Hide" : "View");
      viewBtn.type = "button";
      viewBtn.dataset.path = file.path;
      viewBtn.addEventListener("click", () => {
        if (store.views.has(file.path)) {
          store.views.delete(file.path);
          for (const fn of store.listeners) fn();
        } else store.view(file.path);
      });
      li.appendChild(viewBtn);
      if (shown) li.appendChild(fileView(file.path, shown));
    }
    if (isOpen) {
      if (!store.byPath.has(file.path) && !store.asked.has(file.path)) ask(file.path, false);
      const got = store.byPath.get(file.path);
      const pre = h("div", "ohj-diff");
      if (!got) pre.appendChild(h("div", "ohj-changes-note", "Reading the diff…"));
      else if (got.error) pre.appendChild(h("div", "ohj-action-error", got.error));
      else {
        const lines = got.lines || [];
        pre.append(...lines.map(diffLine));
        if (!lines.length) pre.appendChild(h("div", "ohj-changes-note", "No difference in text."));
        if (got.total > lines.length) {
          const more = h("button", "ohj-linkbtn ohj-diff-all", `Show all ${got.total} lines`);
          more.type = "button";
          more.addEventListener("click", () => ask(file.path, true));
          pre.appendChild(more);
        }
      }
      li.appendChild(pre);
    }
    return li;
  }

  function render(changes) {
    const c = changes || {};
    const files = Array.isArray(c.files) ? c.files : [];
    box.style.display = c.read || c.error ? "" : "none";
    const n = typeof c.count === "number" ? c.count : files.length;
    head.textContent = `Changes: ${n} file${n === 1 ? "" : "s"}`;
    const parts = [];
    if (n > files.length) parts.push(`The first ${files.length} are listed.`);
    if (typeof c.counted === "number") parts.push(`Lines are counted for the first ${c.counted}.`);
    note.textContent = c.error || c.note || (c.read && !n ? "No files changed yet." : parts.join(" "));
    note.style.display = note.textContent ? "" : "none";
    list.replaceChildren(...files.map(fileRow));
  }
  return { box, render, store };
}

// Python learns which views are on screen: a widget nobody sees costs no requests.
function reportView(model, shown, id) {
  try {
    model.send({ view: shown ? "shown" : "gone", id });
  } catch (e) {
    // the kernel is gone or going: nothing to tell
  }
}

// -- the conversation card: one small section each, composed by renderCard -------------------
// Each section returns its element(s) and an update(state) that draws it from the model's state.

function classOf(prefix, value) {
  return `${prefix}${String(value).replace(/[^a-z_]/g, "")}`;
}

function shownIf(node, text) {
  node.textContent = text || "";
  node.style.display = node.textContent ? "" : "none";
}

// The pill, title and id; below them the repository, elapsed time, cost, PRs and the link.
function cardHeader() {
  const head = h("div", "ohj-head");
  const pill = h("span", "ohj-pill");
  const doing = h("span", "ohj-doing");
  const title = h("span", "ohj-title");
  const meta = h("span", "ohj-meta");
  head.append(pill, doing, title, meta);

  const sub = h("div", "ohj-sub");
  const repo = h("span", "ohj-repo");
  const elapsed = h("span", "ohj-elapsed");
  const cost = h("span", "ohj-cost");
  const prs = h("span", "ohj-prs");
  const link = h("a", "ohj-link", "Open in OpenHands ↗");
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  sub.append(repo, elapsed, cost, prs, link);

  function prLinks(s) {
    // pull requests: links where the repository's host is known, else their numbers
    const parts = [];
    (Array.isArray(s.prs) ? s.prs : []).forEach((pr, i) => {
      const url = safeUrl(pr && pr.url);
      const label = `#${pr && pr.number}`;
      let node = h("span", null, label);
      if (url) {
        node = h("a", "ohj-pr-link", label);
        node.href = url;
        node.target = "_blank";
        node.rel = "noopener noreferrer";
      }
      if (i) parts.push(document.createTextNode(", "));
      parts.push(node);
    });
    prs.replaceChildren(...(parts.length ? [document.createTextNode("PR "), ...parts] : []));
  }

  function update(s) {
    const rules = s.rules || NO_RULES;
    pill.textContent = rules.label;
    pill.className = `ohj-pill ${classOf("ohj-s-", rules.style)}`;
    title.textContent = s.title || s.task || "";
    title.title = s.task || "";
    meta.textContent = s.conversation_id ? s.conversation_id.slice(0, 8) : "";
    repo.textContent = s.repository ? `${s.repository}${s.branch ? "@" + s.branch : ""}` : "no repository";
    cost.textContent = usageText(s.cost, s.tokens) + (s.max_cost_text ? ` (cap ${s.max_cost_text})` : "");
    prLinks(s);
    const url = safeUrl(s.url);
    if (url) {
      link.href = url;
      link.style.display = "";
    } else {
      link.removeAttribute("href");
      link.style.display = "none";
    }
    // a command under way shows until the server confirms it ("stopping…")
    shownIf(doing, s.doing);
  }

  function tick(s) {
    const end = s.ended_at || Date.now();
    elapsed.textContent = s.started_at ? `${duration(end - s.started_at)} elapsed` : "";
  }
  return { nodes: [head, sub], update, tick };
}

// One line each, shown only when there is something to say: the phase, a retry under way,
// delayed activity or a store behind, a conversation no longer followed, an error.
function cardNotes() {
  const phase = h("div", "ohj-phase");
  const retry = h("div", "ohj-retry");
  const delayed = h("div", "ohj-delayed");
  const untracked = h("div", "ohj-delayed ohj-untracked");
  const detail = h("div", "ohj-detail");

  function update(s) {
    shownIf(
      delayed,
      s.activity === "delayed"
        ? `Activity may be delayed: it comes from the server's event store, not live${s.activity_note ? ` (${s.activity_note})` : ""}.`
        : s.store_note,
    );
    shownIf(untracked, s.untracked_note);
    shownIf(phase, s.phase_line);
    shownIf(detail, s.detail);
  }

  function tick(s) {
    const wait = Math.max(0, Math.round((s.retry_at - Date.now()) / 1000));
    shownIf(retry, s.retry_at && s.error ? `${s.error} — next attempt in ${wait}s` : "");
  }
  return { nodes: [phase, retry, delayed, untracked, detail], update, tick };
}

// The agent's activity: the last few events, or all of them once expanded.
function cardFeed(model) {
  const box = h("div", "ohj-feed-box");
  const list = h("ul", "ohj-feed");
  const toggle = h("button", "ohj-linkbtn");
  toggle.type = "button";
  box.append(list, toggle);
  let expanded = !!viewState(model).expanded;
  const store = feedStore(model);

  function render() {
    const feed = store.items;
    const shown = expanded ? feed : feed.slice(-FEED_COLLAPSED);
    list.replaceChildren(...shown.map(feedItem));
    box.style.display = feed.length ? "" : "none";
    toggle.style.display = feed.length > FEED_COLLAPSED ? "" : "none";
    toggle.textContent = expanded ? "Show less" : `Show all ${feed.length} events`;
  }
  toggle.addEventListener("click", () => {
    expanded = !expanded;
    saveViewState(model, { expanded });
    render();
  });
  store.listeners.add(render);
  render();
  return { nodes: [box], dispose: () => store.listeners.delete(render) };
}

// Actions waiting for the user's approval (confirmation mode), with a reason to give.
function cardApproval() {
  const box = h("div", "ohj-approval");
  const head = h("div", "ohj-approval-head", "Waiting for your approval");
  const list = h("ul", "ohj-approval-list");
  const bar = h("div", "ohj-approval-bar");
  const buttons = h("span", "ohj-answer-buttons");
  const reason = h("input", "ohj-reason");
  reason.type = "text";
  reason.placeholder = "Reason (optional)";
  reason.addEventListener("keydown", (e) => e.stopPropagation());
  bar.append(buttons, reason);
  box.append(head, list, bar);
  let drawn = null;
  // the ids of the actions this view shows: an answer is for these, never for others
  let shownIds = [];

  function update(s) {
    const pending = Array.isArray(s.pending) ? s.pending : [];
    box.style.display = pending.length ? "" : "none";
    shownIds = pending.map((a) => String(a.id));
    const sig = JSON.stringify(pending);
    if (sig === drawn) return;
    drawn = sig;
    list.replaceChildren(
      ...pending.map((a) => {
        const li = h("li", "ohj-pending");
        const risk = String(a.risk || "UNKNOWN").toUpperCase();
        li.append(
          h("span", `ohj-risk ohj-risk-${risk.toLowerCase().replace(/[^a-z]/g, "")}`, `${risk} risk`),
          h("span", "ohj-pending-tool", a.tool || a.kind || "action"),
          h("span", "ohj-pending-text", a.text || ""),
        );
        if (a.detail) li.appendChild(h("pre", "ohj-pending-detail", a.detail));
        return li;
      }),
    );
  }

  // what an answer sends: the actions shown, and the reason (then cleared)
  function answer() {
    const given = { ids: shownIds, reason: reason.value.trim() };
    reason.value = "";
    return given;
  }
  return { nodes: [box], buttons, update, answer };
}

// The Changes section, drawn again when the changed files move; an open diff is read again
// when its file changes.
function cardChanges(model) {
  const changes = changesSection(model);
  const lastCounts = new Map();
  let drawn = null;

  function render(force) {
    const c = (model.get("state") || {}).changes || {};
    const sig = JSON.stringify(c);
    if (force !== true && sig === drawn) return;
    drawn = sig;
    for (const f of Array.isArray(c.files) ? c.files : []) {
      const key = `${f.status} ${f.added} ${f.removed}`;
      const before = lastCounts.get(f.path);
      if (before !== undefined && before !== key) {
        // the file changed: an open diff is read again, a closed one when it opens
        changes.store.byPath.delete(f.path);
        changes.store.asked.delete(f.path);
        if (changes.store.open.has(f.path)) changes.store.ask(f.path, false);
      }
      lastCounts.set(f.path, key);
    }
    changes.render(c);
  }
  const moved = () => render(false);
  const arrived = () => render(true);
  model.on("change:state", moved);
  changes.store.listeners.add(arrived);
  render(true);
  return {
    nodes: [changes.box],
    dispose: () => {
      model.off("change:state", moved);
      changes.store.listeners.delete(arrived);
    },
  };
}

// The agent's plan, as its task tracker last wrote it: a checklist, drawn again only when
// the plan changes.
const PLAN_MARK = { todo: "☐", in_progress: "◐", done: "☑" };

function cardPlan() {
  const box = h("div", "ohj-plan");
  const label = h("div", "ohj-plan-label");
  const list = h("ul", "ohj-plan-list");
  box.append(label, list);
  let drawn = null;

  function update(s) {
    const plan = Array.isArray(s.plan) ? s.plan : [];
    const sig = JSON.stringify(plan);
    if (sig === drawn) return;
    drawn = sig;
    const done = plan.filter((t) => t.status === "done").length;
    label.textContent = `Plan: ${done} of ${plan.length} done`;
    list.replaceChildren(
      ...plan.map((t) => {
        const status = PLAN_MARK[t.status] ? t.status : "todo";
        const item = h("li", `ohj-plan-item ohj-plan-${status}`);
        item.dataset.status = status;
        item.append(h("span", "ohj-plan-mark", PLAN_MARK[status]), h("span", "ohj-plan-title", String(t.title || "")));
        if (t.notes) item.title = String(t.notes);
        return item;
      }),
    );
    box.style.display = plan.length ? "" : "none";
  }
  return { nodes: [box], update };
}

// When it needs the user while the tab is hidden (the "notify" setting; Python says when, in
// state.attention): a mark in the tab's title, gone when the tab is back, and a browser
// notification once the browser allows them (asked once, on a click: browsers ask only then).
const TITLE_MARK = "● ";

// The mark stays until the tab is back: JupyterLab and Notebook 7 write the title again (on a
// save, a switch of tab), so a watcher on the <title> puts it back while it is wanted.
function markTitle(on) {
  const w = window;
  w.__ohjTitleMarked = on;
  const apply = () => {
    const t = document.title;
    if (w.__ohjTitleMarked && !t.startsWith(TITLE_MARK)) document.title = TITLE_MARK + t;
    if (!w.__ohjTitleMarked && t.startsWith(TITLE_MARK)) document.title = t.slice(TITLE_MARK.length);
  };
  const title = document.querySelector("title");
  if (on && title && !w.__ohjTitleWatch && typeof MutationObserver !== "undefined") {
    w.__ohjTitleWatch = new MutationObserver(apply);
    w.__ohjTitleWatch.observe(title, { childList: true, characterData: true, subtree: true });
  }
  apply();
}

function cardNotify(model) {
  const ask = h("button", "ohj-btn ohj-quiet ohj-notify-ask", "Allow notifications");
  ask.type = "button";
  const supported = () => typeof Notification !== "undefined";
  let shownKey = (model.get("state") || {}).attention || "";

  function update(s) {
    ask.style.display =
      model.get("notify") && supported() && Notification.permission === "default" ? "" : "none";
    const key = s.attention || "";
    if (key === shownKey) return;
    shownKey = key;
    if (!key || !model.get("notify") || !document.hidden) return;
    markTitle(true);
    if (supported() && Notification.permission === "granted") {
      const label = String(s.title || s.task || "A conversation").slice(0, 200);
      new Notification(`OpenHands: ${key}`, { body: label, tag: `ohj-${label}` });
    }
  }
  ask.addEventListener("click", () => {
    Notification.requestPermission().then(() => update(model.get("state") || {}));
  });
  const back = () => {
    if (!document.hidden && window.__ohjTitleMarked) markTitle(false);
  };
  document.addEventListener("visibilitychange", back);
  const onNotify = () => update(model.get("state") || {});
  model.on("change:notify", onNotify);
  return {
    nodes: [ask],
    update,
    dispose: () => {
      document.removeEventListener("visibilitychange", back);
      model.off("change:notify", onNotify);
    },
  };
}

// The final answer, once the run has ended.
function cardAnswer() {
  const box = h("div", "ohj-result");
  const text = h("div", "ohj-result-text");
  box.append(h("div", "ohj-result-label", "Final answer"), text);

  function update(s) {
    const rules = s.rules || NO_RULES;
    text.textContent = s.result || "";
    box.style.display = s.result && !rules.active ? "" : "none";
  }
  return { nodes: [box], update };
}

function button(label, action, cls) {
  const b = h("button", `ohj-btn ${cls || ""}`, label);
  b.type = "button";
  b.dataset.action = action;
  return b;
}

// The buttons and the follow-up box. The command buttons come from Python's command table
// (state.buttons): this only draws each where its "place" says and sends its command.
function cardActions(model, approval) {
  const bar = h("div", "ohj-actions");
  const commandBox = h("span", "ohj-command-buttons");
  const refreshBtn = button("Refresh", "refresh");
  const untrackBtn = button("Stop tracking", "untrack", "ohj-quiet");
  const input = h("input", "ohj-input");
  input.type = "text";
  input.placeholder = "Send a follow-up…";
  // a draft lives on the model object, so a view drawn again keeps it
  input.value = model.__ohjDraft || "";
  input.addEventListener("input", () => {
    model.__ohjDraft = input.value;
  });
  const sendBox = h("span", "ohj-send-buttons");
  bar.append(commandBox, refreshBtn, untrackBtn, input, sendBox);
  const error = h("div", "ohj-action-error");

  let localBusy = "";
  let redraw = () => {};
  const send = (action, extra) => {
    localBusy = action;
    model.send({ action, ...(extra || {}) });
    redraw();
  };
  refreshBtn.addEventListener("click", () => send("refresh"));
  untrackBtn.addEventListener("click", () => send("untrack"));
  // what a click on a command button sends, by where the button is
  const clicked = {
    bar: (command) => send(command),
    approval: (command) => send(command, approval.answer()),
    input: (command) => {
      const text = input.value.trim();
      if (!text) return;
      send(command, { text });
      input.value = "";
      model.__ohjDraft = "";
    },
  };
  const boxes = { bar: commandBox, approval: approval.buttons, input: sendBox };
  let drawn = null;
  let commandButtons = [];

  function renderButtons(list) {
    const sig = JSON.stringify(list.map((b) => [b.command, b.label, b.place, b.style]));
    if (sig === drawn) return;
    drawn = sig;
    commandButtons = [];
    const made = { bar: [], approval: [], input: [] };
    for (const b of list) {
      if (!boxes[b.place]) continue;
      const style = b.style ? `ohj-${String(b.style).replace(/[^a-z]/g, "")}` : "";
      const shown = button(b.label, b.command, style);
      shown.addEventListener("click", () => clicked[b.place](b.command));
      made[b.place].push(shown);
      commandButtons.push([shown, b]);
    }
    for (const place of Object.keys(boxes)) boxes[place].replaceChildren(...made[place]);
  }
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      const b = commandButtons.find(([, spec]) => spec.place === "input");
      if (b && !b[0].disabled) clicked.input(b[1].command);
    }
    e.stopPropagation();
  });

  function update(s) {
    const rules = s.rules || NO_RULES;
    const busy = model.get("busy") || localBusy || s.doing;
    refreshBtn.disabled = !!busy || !s.conversation_id;
    untrackBtn.disabled = !!busy || s.tracking === false;
    input.disabled = !rules.send;
    const specs = Array.isArray(s.buttons) ? s.buttons : [];
    renderButtons(specs);
    const enabled = new Set(specs.filter((b) => b.enabled).map((b) => b.command));
    for (const [b, spec] of commandButtons) b.disabled = !!busy || !enabled.has(spec.command);
    for (const b of [refreshBtn, untrackBtn, ...commandButtons.map(([b]) => b)]) {
      b.classList.toggle("ohj-busy", busy === b.dataset.action);
    }
    shownIf(error, model.get("action_error") || s.command_note);
  }
  return {
    nodes: [bar, error],
    update,
    // the busy flag from Python is down: what this view sent is no longer under way
    settled: () => {
      localBusy = "";
    },
    onSend: (fn) => {
      redraw = fn;
    },
  };
}

function renderCard({ model, el }) {
  const root = h("div", "ohj-card");
  el.appendChild(root);
  const header = cardHeader();
  const notes = cardNotes();
  const feed = cardFeed(model);
  const plan = cardPlan();
  const approval = cardApproval();
  const changes = cardChanges(model);
  const answer = cardAnswer();
  const actions = cardActions(model, approval);
  const notify = cardNotify(model);
  const drawn = [header, notes, plan, approval, answer, actions, notify];
  for (const part of [header, notify, notes, plan, feed, approval, changes, answer, actions]) root.append(...part.nodes);

  const tick = () => {
    const s = model.get("state") || {};
    header.tick(s);
    notes.tick(s);
  };
  const update = () => {
    const s = model.get("state") || {};
    root.dataset.status = String(s.status || "unknown");
    root.dataset.activity = s.activity || "";
    for (const part of drawn) part.update(s);
    tick();
  };
  actions.onSend(update);
  const onBusy = () => {
    if (!model.get("busy")) actions.settled();
    update();
  };
  model.on("change:state", update);
  model.on("change:busy", onBusy);
  model.on("change:action_error", update);
  const timer = setInterval(tick, 1000);
  update();
  const viewId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const leave = () => reportView(model, false, viewId);
  window.addEventListener("pagehide", leave);
  reportView(model, true, viewId);
  return () => {
    clearInterval(timer);
    model.off("change:state", update);
    model.off("change:busy", onBusy);
    model.off("change:action_error", update);
    feed.dispose();
    changes.dispose();
    notify.dispose();
    window.removeEventListener("pagehide", leave);
    leave();
  };
}

const PANEL_COLUMNS = ["Status", "Title", "Repository", "Elapsed", "Cost", "Link", "Actions"];
// a fan-out's table: what each conversation changed and said instead of where it works
const FANOUT_COLUMNS = ["Status", "Task", "Elapsed", "Cost", "Link", "Changed", "Answer", "Actions"];

function panelTable(fanout) {
  const wrap = h("div", "ohj-table-wrap");
  const table = h("table", "ohj-table");
  const thead = h("thead");
  const hr = h("tr");
  for (const label of fanout ? FANOUT_COLUMNS : PANEL_COLUMNS) {
    hr.appendChild(h("th", null, label));
  }
  thead.appendChild(hr);
  const tbody = h("tbody");
  table.append(thead, tbody);
  wrap.appendChild(table);
  return { wrap, tbody };
}

// The launch form: a task, and optionally a repository and branch.
function panelForm(model) {
  const form = h("form", "ohj-form");
  const input = (name, cls, placeholder) => {
    const node = h("input", cls);
    node.placeholder = placeholder;
    node.name = name;
    node.addEventListener("keydown", (e) => e.stopPropagation());
    return node;
  };
  const task = input("task", "ohj-input", "Task for the agent…");
  const repo = input("repository", "ohj-input ohj-small", "owner/repo (optional)");
  const branch = input("branch", "ohj-input ohj-small", "branch (optional)");
  const launch = h("button", "ohj-btn ohj-primary", "Launch");
  launch.type = "submit";
  form.append(task, repo, branch, launch);
  const message = h("div", "ohj-action-error");
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
  // what Python said of the last launch, and whether one is under way
  function update() {
    const text = model.get("message") || "";
    message.textContent = text;
    message.style.display = text ? "" : "none";
    launch.disabled = !!model.get("busy");
    if (!model.get("busy") && !text) task.value = "";
  }
  return { form, message, update };
}

function rowButton(model, label, action, key, enabled) {
  const b = h("button", "ohj-btn", label);
  b.type = "button";
  b.disabled = !enabled;
  b.addEventListener("click", () => {
    b.disabled = true;
    model.send({ action, key });
  });
  return b;
}

// One conversation's row; its elapsed cell is returned to be ticked.
function panelRow(model, r, fanout) {
  const tr = h("tr", "ohj-row");
  tr.dataset.status = r.status;
  const pillCell = h("td");
  const rules = r.rules || NO_RULES;
  const pill = h("span", `ohj-pill ohj-s-${String(rules.style).replace(/[^a-z_]/g, "")}`, rules.label);
  pillCell.appendChild(pill);
  const titleCell = h("td", "ohj-cell-title", r.title || r.task || "");
  titleCell.title = r.detail || r.task || "";
  if (r.pending) {
    tr.classList.add("ohj-row-waiting");
    titleCell.appendChild(h("div", "ohj-row-pending", `Waits for your approval: ${r.pending}`));
  }
  const repoCell = h("td", r.repository ? null : "ohj-none", r.repository ? `${r.repository}${r.branch ? "@" + r.branch : ""}` : "no repository");
  const elapsedCell = h("td");
  const cost = costCell(r.cost, r.tokens);
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
  // the buttons wrap in their cell rather than push the table past the notebook's width
  const buttons = h("div", "ohj-row-actions");
  act.appendChild(buttons);
  if (r.doing) pillCell.appendChild(h("span", "ohj-doing", r.doing));
  // the command buttons come from Python's command table
  for (const b of Array.isArray(r.buttons) ? r.buttons : []) {
    buttons.appendChild(rowButton(model, b.label, b.command, r.key, !!b.enabled && !r.doing));
  }
  buttons.appendChild(rowButton(model, "Untrack", "untrack", r.key, true));
  if (fanout) {
    const changed = h("td", r.changes === null || r.changes === undefined ? "ohj-none" : null, r.changes === null || r.changes === undefined ? "–" : String(r.changes));
    const answer = h("td", "ohj-cell-answer", r.answer || "");
    tr.append(pillCell, titleCell, elapsedCell, cost, linkCell, changed, answer, act);
  } else {
    tr.append(pillCell, titleCell, repoCell, elapsedCell, cost, linkCell, act);
  }
  return { tr, elapsedCell };
}

// The total of cost and tokens over the rows, when there is more than one and any usage.
function panelTotal(rows, fanout) {
  let cost = 0;
  let prompt = 0;
  let completion = 0;
  let anyUsage = false;
  for (const r of rows) {
    if (typeof r.cost === "number") {
      cost += r.cost;
      anyUsage = true;
    }
    if (r.tokens) {
      if (typeof r.tokens.prompt === "number") prompt += r.tokens.prompt;
      if (typeof r.tokens.completion === "number") completion += r.tokens.completion;
      anyUsage = true;
    }
  }
  if (rows.length < 2 || !anyUsage) return null;
  const total = h("tr", "ohj-row ohj-total");
  const before = fanout ? [h("td")] : [h("td"), h("td")];
  const after = fanout ? [h("td"), h("td"), h("td"), h("td")] : [h("td"), h("td")];
  total.append(
    h("td", null, "Total"),
    h("td", "ohj-cell-title", `${rows.length} conversations`),
    ...before,
    costCell(cost, { prompt, completion }),
    ...after,
  );
  return total;
}

function panelCounts(rows) {
  const tally = {};
  for (const r of rows) tally[r.status] = (tally[r.status] || 0) + 1;
  const waiting = rows.filter((r) => r.pending).length;
  return (waiting ? `${waiting} waiting for you · ` : "") + Object.entries(tally).map(([k, v]) => `${v} ${k}`).join(" · ");
}

function renderPanel({ model, el }) {
  const root = h("div", "ohj-panel");
  el.appendChild(root);
  const fanout = !!model.get("fanout");
  const head = h("div", "ohj-panel-head", fanout ? "OpenHands fan-out" : "OpenHands conversations");
  const counts = h("span", "ohj-counts");
  head.appendChild(counts);
  const { wrap, tbody } = panelTable(fanout);
  const empty = h("div", "ohj-phase", fanout ? "None of these conversations is followed any more." : "No tracked conversations yet: launch one below or with %openhands.");
  const launcher = panelForm(model);
  root.append(head, wrap, empty);
  if (fanout) {
    const stopAll = h("button", "ohj-btn ohj-danger", "Stop all");
    stopAll.type = "button";
    stopAll.dataset.action = "stop_all";
    stopAll.addEventListener("click", () => model.send({ action: "stop_all" }));
    head.appendChild(stopAll);
    root.append(launcher.message);
  } else {
    root.append(launcher.form, launcher.message);
  }

  const elapsedCells = [];

  function renderRows() {
    const rows = model.get("rows") || [];
    elapsedCells.length = 0;
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      const { tr, elapsedCell } = panelRow(model, r, fanout);
      elapsedCells.push([elapsedCell, r]);
      frag.appendChild(tr);
    }
    const total = panelTotal(rows, fanout);
    if (total) frag.appendChild(total);
    tbody.replaceChildren(frag);
    counts.textContent = panelCounts(rows);
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

  model.on("change:rows", renderRows);
  model.on("change:message", launcher.update);
  model.on("change:busy", launcher.update);
  const timer = setInterval(tick, 1000);
  renderRows();
  launcher.update();
  return () => {
    clearInterval(timer);
    model.off("change:rows", renderRows);
    model.off("change:message", launcher.update);
    model.off("change:busy", launcher.update);
  };
}


// The panel has a "rows" trait; the conversation card does not.
function render(ctx) {
  return ctx.model.get("rows") === undefined ? renderCard(ctx) : renderPanel(ctx);
}

// Once per model, before any view: a card's feed and diffs are kept from its first message
// on, and every view of it draws from them.
function initialize({ model }) {
  if (model.get("rows") === undefined) {
    feedStore(model);
    diffStore(model);
  }
}

export default { initialize, render };
