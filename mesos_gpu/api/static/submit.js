// The submit form: a job's JSON as POST v1/jobs takes it, the examples' jobs as templates
// (static/templates.json, written from examples/*/job*.json by scripts/web-templates.py), and the API's
// errors listed at their JSON paths.
import { get, request } from "./api.js";
import { $, h, replace } from "./dom.js";

let templates = [];

export async function loadTemplates() {
  try {
    templates = (await get("static/templates.json")).data || [];
  } catch {
    templates = [];
  }
  replace($("submit-template"), h("option", { value: "" }, "an example job…"),
    templates.map((t) => h("option", { value: t.id }, t.title)));
}

function useTemplate() {
  const chosen = templates.find((t) => t.id === $("submit-template").value);
  $("submit-note").textContent = chosen ? chosen.note : "";
  if (chosen) $("submit-json").value = JSON.stringify(chosen.job, null, 2);
}

// Select the field a JSON path names in the textarea (each segment's key found after the previous one;
// array indices are skipped): a good guess for a pretty-printed document, nothing more.
function selectPath(path) {
  const area = $("submit-json"), text = area.value;
  let at = 0, found = null;
  for (const raw of path.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^\d+$/.test(key)) continue;
    const next = text.indexOf(JSON.stringify(key), at);
    if (next < 0) break;
    found = [next, next + JSON.stringify(key).length];
    at = found[1];
  }
  area.focus();
  if (found) area.setSelectionRange(found[0], found[1]);
}

function showErrors(err) {
  const box = $("submit-errors");
  const items = err.details.map((d) => h("li", { "data-path": d.path },
    h("button", { type: "button", class: "link", title: "select this field in the job", onclick: () => selectPath(d.path || "") },
      h("code", {}, d.path || "/")), `: ${d.message}`));
  replace(box, h("p", {}, `Not submitted (HTTP ${err.status || "—"}): ${err.message}`), items.length ? h("ul", {}, items) : null);
  $("submit-json").setAttribute("aria-invalid", "true");
}

async function submit(event, go) {
  event.preventDefault();
  const button = event.submitter || $("submit-form").querySelector("button[type=submit]");
  button.disabled = true;
  replace($("submit-errors"));
  $("submit-json").removeAttribute("aria-invalid");
  try {
    const answer = await request("POST", "v1/jobs", { body: $("submit-json").value });
    document.dispatchEvent(new CustomEvent("announce", { detail: `Submitted job ${answer.data.id}` }));
    go(answer.data.id);
  } catch (err) {
    showErrors(err);
  } finally {
    button.disabled = false;
  }
}

export function setup(go) {
  $("submit-template").addEventListener("change", useTemplate);
  $("submit-form").addEventListener("submit", (e) => submit(e, go));
}
