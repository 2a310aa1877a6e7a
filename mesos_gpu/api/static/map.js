// The GPU map view: one row per agent, one button per GPU, polled with If-None-Match (304 when unchanged).
import { get } from "./api.js";
import { $, h, replace, fmt, jobHref } from "./dom.js";

export const POLL_MS = 1000;

const state = { data: null, etag: null, pinned: null, shown: null, active: null, priorities: new Map() };

const cellKey = (agent, cell) => `${agent.id}:${cell.index}`;

function indexText(cell) {
  return cell.index_reported ? `GPU ${cell.index}` : `GPU slot ${cell.index} (index not reported)`;
}

function matches(cell, tenant, job) {
  if (!tenant && !job) return true;
  return cell.tasks.some((t) => (!tenant || t.tenant === tenant) && (!job || t.job === job));
}

function shareLines(share) {
  const pct = Math.round(Math.min(share.gpus, 1) * 100);
  const memory = share.device_memory ? `${share.gpu_memory} / ${share.device_memory} MB` : `${share.gpu_memory} MB`;
  return [
    h("div", {}, `${share.isolation} · ${share.gpus} given · ${share.gpus_free} free`),
    h("div", {}, `memory ${memory}`),
    h("div", { class: "bar", "aria-hidden": "true" }, h("span", { style: `width:${pct}%` })),
  ];
}

function cellLabel(agent, cell) {
  const where = `${indexText(cell)} of ${agent.hostname}`;
  if (cell.state === "whole") return `${where}: whole GPU, ${cell.tasks.map((t) => `job ${t.job} task ${t.task}`).join(", ")}`;
  if (cell.state === "shared") {
    const s = cell.share;
    return `${where}: shared, ${s.isolation}, ${s.gpus} given to ${cell.tasks.length} task(s), ${s.gpus_free} free`;
  }
  if (cell.state === "other") return `${where}: in use, not by a running task of this scheduler`;
  return `${where}: free`;
}

function cellButton(agent, cell, dim) {
  const key = cellKey(agent, cell);
  const lines = [h("div", { class: "idx" }, cell.index_reported ? `GPU ${cell.index}` : `GPU ? (slot ${cell.index})`)];
  if (cell.state === "whole") {
    for (const t of cell.tasks) lines.push(h("div", {}, t.job), h("div", {}, t.task));
  } else if (cell.state === "shared") {
    lines.push(...shareLines(cell.share), h("div", {}, `${cell.tasks.length} share task(s)`));
  } else {
    lines.push(h("div", {}, cell.state === "other" ? "in use (not ours)" : "free"));
  }
  const classes = ["gpu", cell.state, dim ? "dim" : "", state.pinned === key ? "pinned" : ""].join(" ");
  return h("button", {
    type: "button", class: classes, "data-key": key, "data-state": cell.state,
    "data-jobs": cell.tasks.map((t) => t.job).join(" "), "aria-label": cellLabel(agent, cell),
    "aria-pressed": state.pinned === key ? "true" : "false", title: cellLabel(agent, cell),
    tabindex: "-1", onclick: () => pin(key), onmouseenter: () => show(key), onfocus: () => focused(key),
    onmouseleave: () => show(state.pinned),
  }, lines);
}

function agentRow(agent, tenant, job) {
  const info = [agent.model || "model not reported",
    agent.gpu_memory_mb ? `${agent.gpu_memory_mb} MB each` : null,
    agent.mps ? "MPS" : null, agent.mig ? `MIG ${agent.mig}` : null,
    `${agent.gpus.length} GPU(s)`, agent.known ? null : "not listed by the master"].filter(Boolean).join(" · ");
  return h("div", {
    class: `agent${agent.active ? "" : " inactive"}`, role: "group", "data-agent": agent.id,
    "aria-label": `agent ${agent.hostname}${agent.active ? "" : " (inactive)"}`,
  }, h("div", { class: "agent-name" }, agent.hostname || agent.id, h("div", { class: "agent-info" }, info)),
  h("div", { class: "gpus" }, agent.gpus.map((cell) => cellButton(agent, cell, !matches(cell, tenant, job)))));
}

function find(key) {
  if (!state.data || !key) return null;
  for (const agent of state.data.agents) for (const cell of agent.gpus) if (cellKey(agent, cell) === key) return { agent, cell };
  return null;
}

function taskItem(t) {
  const bits = [`${t.state || "?"}`, t.gpus !== undefined ? `${t.gpus} GPU` : null,
    t.gpu_memory ? `${t.gpu_memory} MB` : null, t.isolation, t.tenant ? `tenant ${t.tenant}` : null,
    `priority ${t.priority}`].filter(Boolean).join(" · ");
  return h("li", {}, h("a", { href: jobHref(t.job) }, `${t.job} / ${t.task}`), h("div", {}, bits),
    t.enforced ? h("div", { class: "note" }, `in effect: ${t.enforced}`) : null);
}

function show(key) {
  state.shown = key;
  const body = $("map-detail-body");
  const found = find(key);
  if (!found) { replace(body); return; }
  const { agent, cell } = found;
  const facts = [
    ["Agent", `${agent.hostname} (${agent.active ? "active" : "inactive"})`],
    ["GPU", indexText(cell)], ["UUID", cell.uuid], ["Model", agent.model],
    ["Memory", agent.gpu_memory_mb ? `${agent.gpu_memory_mb} MB` : null],
    ["Health", "not reported per GPU by Mesos"], ["Holds", cell.state],
  ];
  if (cell.share) {
    facts.push(["Share host", cell.share.host], ["Isolation", cell.share.isolation],
      ["Given", `${cell.share.gpus} GPU, ${cell.share.gpu_memory} MB`],
      ["Free", `${cell.share.gpus_free} GPU${cell.share.gpu_memory_free !== null ? `, ${cell.share.gpu_memory_free} MB` : ""}`]);
  }
  replace(body,
    h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, fmt(v))])),
    cell.tasks.length ? h("ul", { "aria-label": "tasks on this GPU" }, cell.tasks.map(taskItem))
      : h("p", {}, cell.state === "other" ? "Mesos counts this GPU used, but no running task of this scheduler holds it: another framework's task, an empty share host lingering before it gives the GPU back, or a task that just ended." : "No task holds this GPU."));
}

function pin(key) {
  state.pinned = state.pinned === key ? null : key;
  for (const b of document.querySelectorAll("#map-agents .gpu")) {
    const on = b.dataset.key === state.pinned;
    b.classList.toggle("pinned", on);
    b.setAttribute("aria-pressed", on ? "true" : "false");
  }
  show(state.pinned || key);
}

// Keyboard: the map is one Tab stop (the last GPU focused); arrows move between GPUs (left/right within
// an agent, up/down to the same GPU of the agent above/below), Home/End to an agent's first/last GPU.
function focused(key) {
  state.active = key;
  rove();
  show(key);
}

function rove() {
  const cells = [...document.querySelectorAll("#map-agents .gpu")];
  const active = cells.find((b) => b.dataset.key === state.active) || cells[0];
  for (const b of cells) b.tabIndex = b === active ? 0 : -1;
}

function move(event) {
  const cell = event.target.closest(".gpu");
  if (!cell) return;
  const rows = [...document.querySelectorAll("#map-agents .agent")].map((r) => [...r.querySelectorAll(".gpu")]);
  const r = rows.findIndex((row) => row.includes(cell));
  const c = rows[r].indexOf(cell);
  const nearest = (row) => row[Math.min(c, row.length - 1)];
  const step = (dir) => { for (let i = r + dir; i >= 0 && i < rows.length; i += dir) if (rows[i].length) return nearest(rows[i]); return null; };
  const target = {
    ArrowRight: rows[r][c + 1], ArrowLeft: rows[r][c - 1], Home: rows[r][0], End: rows[r][rows[r].length - 1],
    ArrowDown: step(1), ArrowUp: step(-1),
  }[event.key];
  if (event.key in { ArrowRight: 1, ArrowLeft: 1, ArrowUp: 1, ArrowDown: 1, Home: 1, End: 1 }) event.preventDefault();
  if (target) target.focus();
}

function fillSelect(select, values) {
  const current = select.value;
  replace(select, h("option", { value: "" }, "all"), values.map((v) => h("option", { value: v }, v)));
  select.value = values.includes(current) ? current : "";
}

function waitingList(waiting) {
  if (!waiting.total) return h("p", {}, "No job is waiting.");
  const shown = waiting.jobs.length < waiting.total ? ` (the first ${waiting.jobs.length} shown)` : "";
  return [h("p", {}, `${waiting.total} job(s) waiting${shown}.`),
    h("ul", { id: "waiting-list" }, waiting.jobs.map((w) => h("li", { "data-job": w.job },
      h("a", { href: jobHref(w.job) }, w.job), ` · ${w.gpus_text} GPU · tenant ${w.tenant} · `,
      h("span", { class: "reason" }, w.wait_reason || "waiting for offers"))))];
}

export function render() {
  const data = state.data;
  if (!data) return;
  fillSelect($("map-tenant"), data.tenants);
  fillSelect($("map-job"), data.jobs);
  const tenant = $("map-tenant").value, job = $("map-job").value;
  const hadFocus = document.activeElement && document.activeElement.closest("#map-agents") ? document.activeElement.dataset.key : null;
  replace($("map-agents"), data.agents.length ? data.agents.map((a) => agentRow(a, tenant, job)) : h("p", {}, "The Mesos master lists no agent."));
  rove();
  if (hadFocus) { const again = document.querySelector(`#map-agents .gpu[data-key="${CSS.escape(hadFocus)}"]`); if (again) again.focus({ preventScroll: true }); }
  const g = data.gpus;
  const matching = tenant || job ? ` · ${document.querySelectorAll("#map-agents .gpu:not(.dim)").length} match the filter` : "";
  $("map-summary").textContent = `${g.total} GPUs on ${data.agents.length} agent(s): ${g.whole} whole, ${g.shared} shared, ${g.other} used by others, ${g.free} free${matching}`;
  $("map-error").textContent = data.master_error || "";
  replace($("map-waiting"), waitingList(data.waiting));
  state.priorities = new Map([...data.waiting.jobs.map((w) => [w.job, w.priority]),
    ...data.agents.flatMap((a) => a.gpus.flatMap((c) => c.tasks.map((t) => [t.job, t.priority])))]);
  if (state.shown) show(state.shown);
}

// Priority of a job the map knows (an active or waiting one), for the jobs list.
export const priorityOf = (id) => state.priorities.get(id);

export async function poll() {
  const answer = await get("v1/cluster/map", { etag: state.etag });
  if (answer.status === 304) return false;
  state.data = answer.data;
  state.etag = answer.etag;
  render();
  return true;
}

export function setup() {
  $("map-tenant").addEventListener("change", render);
  $("map-job").addEventListener("change", render);
  $("map-agents").addEventListener("keydown", move);
}
