// The jobs list, a job's page (tasks, the states this page saw, kill) and a task's live logs.
import { get, request, jobPath } from "./api.js";
import { $, h, replace, age, fmt, jobHref } from "./dom.js";
import { priorityOf } from "./map.js";

export const POLL_MS = 2000;
export const LOG_POLL_MS = 1000;
const PAGE = 50;
const MAX_LOG_CHARS = 200000;

const list = { offset: 0, total: 0 };
const detail = { id: null, job: null, seen: new Map() };
const logs = { key: null, offset: 0, timer: null, busy: false };

// ------------------------------------------------------------------------------------------ the list
function jobsQuery() {
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(list.offset) });
  if ($("jobs-state").value) params.set("state", $("jobs-state").value);
  const tenant = $("jobs-tenant").value.trim();
  if (tenant) params.set("tenant", tenant);
  return `v1/jobs?${params}`;
}

function jobRow(job, now) {
  const priority = job.priority ?? priorityOf(job.id);
  return h("tr", { "data-job": job.id },
    h("td", {}, h("a", { href: jobHref(job.id) }, job.id)),
    h("td", { class: `state-${job.state}` }, job.state),
    h("td", {}, fmt(job.tenant)), h("td", {}, fmt(priority)), h("td", {}, job.gpus_text ?? fmt(job.gpus)),
    h("td", {}, `${job.tasks_running} / ${job.task_count}`), h("td", {}, age(job.submitted_at, now)),
    h("td", { class: "reason" }, job.wait_reason || job.message || ""));
}

export async function pollList() {
  let answer;
  try {
    answer = await get(jobsQuery());
  } catch (err) {
    $("jobs-error").textContent = err.message;
    for (const d of err.details) $("jobs-error").append(` ${d.path}: ${d.message}`);
    return;
  }
  $("jobs-error").textContent = "";
  const data = answer.data, now = Date.now() / 1000;
  list.total = data.total;
  replace($("jobs-table").tBodies[0], data.jobs.length ? data.jobs.map((j) => jobRow(j, now))
    : h("tr", {}, h("td", { colspan: "8" }, "No job matches.")));
  const last = Math.min(data.offset + data.jobs.length, data.total);
  $("jobs-count").textContent = data.total ? `${data.offset + 1}–${last} of ${data.total}` : "0 jobs";
  $("jobs-prev").disabled = data.offset === 0;
  $("jobs-next").disabled = data.next === null;
}

// ------------------------------------------------------------------------------------------ one job
function remember(task) {
  if (!task.task_id && !task.state) return;
  const key = task.name;
  const seen = detail.seen.get(key) || [];
  const last = seen[seen.length - 1];
  const label = `${task.state || "not launched"}${task.attempt >= 0 ? ` (attempt ${task.attempt})` : ""}`;
  if (!last || last.label !== label) seen.push({ label, at: new Date() });
  detail.seen.set(key, seen);
}

function taskRow(task) {
  remember(task);
  const seen = (detail.seen.get(task.name) || []).map((s) => `${s.at.toLocaleTimeString()} ${s.label}`);
  const gpus = typeof task.gpus === "object" ? `${task.gpus.min}–${task.gpus.max}` : fmt(task.gpus);
  const share = task.share ? ` (${task.share.gpus} GPU, ${task.share.gpu_memory || 0} MB on ${task.share.device || "?"})` : "";
  const where = task.hostname ? `${task.hostname}${task.address ? ` · ${task.address}` : ""}` : "—";
  return h("tr", { "data-task": task.name },
    h("th", { scope: "row" }, task.name), h("td", {}, task.role === "task" ? "—" : `${task.role} ${task.index}`),
    h("td", { class: `state-${task.state}` }, fmt(task.state)), h("td", {}, fmt(task.attempt)),
    h("td", {}, where), h("td", {}, gpus + share),
    h("td", {}, task.isolation, task.enforced && task.enforced.in_effect ? h("div", { class: "note" }, task.enforced.in_effect) : null),
    h("td", {}, [task.message, task.reason, task.exit_code !== null && task.exit_code !== undefined ? `exit ${task.exit_code}` : null].filter(Boolean).join(" · ") || "—"),
    h("td", {}, h("ol", { class: "seen" }, seen.map((s) => h("li", {}, s)))));
}

function facts(job) {
  const tf = job.tf_cluster ? Object.entries(job.tf_cluster).map(([role, addrs]) => `${role}: ${addrs.map((a) => a || "(not placed)").join(", ")}`).join("; ") : null;
  const rows = [
    ["State", job.state], ["Why it waits", job.state === "PENDING" ? job.wait_reason || job.message : null],
    ["Message", job.message], ["Tenant", job.tenant], ["Priority", job.spec && job.spec.priority],
    ["GPUs", job.gpus_text], ["Isolation", job.isolation], ["Restarts", job.restarts], ["Attempt", job.attempt],
    ["Next attempt", job.next_attempt_at_iso], ["Kill requested", job.kill_requested ? "yes" : null],
    ["TF_CONFIG cluster", tf], ["Submitted", job.submitted_at_iso], ["Started", job.started_at_iso],
    ["Finished", job.finished_at_iso],
  ].filter(([, v]) => v !== null && v !== undefined && v !== "");
  return rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-fact": k }, String(v))]);
}

export function openJob(id) {
  if (detail.id !== id) {
    detail.id = id; detail.job = null; detail.seen = new Map();
    stopLogs(); replace($("logs")); $("logs-error").textContent = "";
    replace($("job-facts")); replace($("job-tasks").tBodies[0]);
    $("job-title").textContent = `Job ${id}`;
  }
}

export async function pollJob() {
  if (!detail.id) return;
  const id = detail.id;
  let answer;
  try {
    answer = await get(jobPath(id));
  } catch (err) {
    $("job-error").textContent = err.message;
    return;
  }
  if (detail.id !== id) return;
  const job = answer.data;
  detail.job = job;
  $("job-error").textContent = "";
  $("job-title").textContent = `Job ${job.id}${job.name && job.name !== job.id ? ` (${job.name})` : ""}`;
  replace($("job-facts"), facts(job));
  replace($("job-tasks").tBodies[0], job.tasks.map(taskRow));
  $("job-kill").disabled = job.terminal || job.kill_requested;
  const select = $("logs-task"), current = select.value;
  const names = job.tasks.map((t) => t.name);
  if ([...select.options].map((o) => o.value).join() !== names.join()) {
    replace(select, names.map((n) => h("option", { value: n }, n)));
    if (names.includes(current)) select.value = current;
  }
}

// ------------------------------------------------------------------------------------------ kill
async function kill() {
  const job = detail.job;
  if (!job) return;
  $("kill-text").textContent = `Job ${job.id} and its ${job.task_count} task(s) will be killed. This cannot be undone.`;
  const dialog = $("kill-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  const choice = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  $("job-kill").focus();
  if (choice !== "kill") return;
  try {
    await request("DELETE", jobPath(job.id));
    document.dispatchEvent(new CustomEvent("announce", { detail: `Kill requested for job ${job.id}` }));
  } catch (err) {
    $("job-error").textContent = `Kill failed: ${err.message}`;
  }
  await pollJob();
}

// ------------------------------------------------------------------------------------------ logs
export function stopLogs() {
  if (logs.timer) clearTimeout(logs.timer);
  logs.timer = null; logs.key = null; logs.offset = 0;
}

async function readLogs(key) {
  logs.timer = null;
  if (logs.key !== key || logs.busy) return;
  const [id, task, stream] = key.split("\u0000");
  logs.busy = true;
  let more = false;
  try {
    const query = new URLSearchParams({ task, stream, offset: String(logs.offset) });
    const answer = await get(`${jobPath(id)}/logs?${query}`);
    if (logs.key !== key) return;
    const data = answer.data;
    $("logs-error").textContent = "";
    if (data.data) {
      const pre = $("logs");
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(data.data);
      if (pre.textContent.length > MAX_LOG_CHARS) pre.textContent = pre.textContent.slice(-MAX_LOG_CHARS);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
      more = true;
    }
    logs.offset = data.next_offset;
  } catch (err) {
    if (logs.key === key) $("logs-error").textContent = err.message;
  } finally {
    logs.busy = false;
  }
  if (logs.key === key && $("logs-follow").checked) {
    logs.timer = setTimeout(() => readLogs(key), more ? 0 : LOG_POLL_MS);
  }
}

function showLogs(event) {
  event.preventDefault();
  if (!detail.id || !$("logs-task").value) return;
  stopLogs();
  replace($("logs"));
  logs.key = [detail.id, $("logs-task").value, $("logs-stream").value].join("\u0000");
  readLogs(logs.key);
}

export function setup(refreshList) {
  $("jobs-filter").addEventListener("submit", (e) => { e.preventDefault(); list.offset = 0; refreshList(); });
  $("jobs-prev").addEventListener("click", () => { list.offset = Math.max(0, list.offset - PAGE); refreshList(); });
  $("jobs-next").addEventListener("click", () => { list.offset += PAGE; refreshList(); });
  $("job-kill").addEventListener("click", kill);
  $("logs-form").addEventListener("submit", showLogs);
  $("logs-follow").addEventListener("change", () => {
    if ($("logs-follow").checked && logs.key && !logs.timer) readLogs(logs.key);
  });
}
