// The page's entry: views by URL fragment (#map, #jobs, #job/<id>, #submit), sign-in, polling.
// Polling runs only for the view on screen and stops while the tab is hidden.
import { onUnauthorized, setToken, token, get } from "./api.js";
import { $, jobHref } from "./dom.js";
import * as map from "./map.js";
import * as jobs from "./jobs.js";
import * as submit from "./submit.js";

const VIEWS = ["map", "jobs", "job", "submit"];
let current = null;
let timer = null;
let generation = 0;

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
  if (hash.startsWith("job/")) return { view: "job", id: hash.slice(4) };
  return { view: VIEWS.includes(hash) ? hash : "map" };
}

function status(text) { $("status").textContent = text; }

async function tick(gen) {
  if (gen !== generation || document.hidden || !$("login").hidden) return;
  const view = current.view;
  try {
    if (view === "map") await map.poll();
    else if (view === "jobs") { await map.poll(); await jobs.pollList(); }
    else if (view === "job") await jobs.pollJob();
    if (view !== "submit") status(`Updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    if (err.status !== 401) status(`Update failed: ${err.message}`);
  }
  if (gen !== generation) return;
  const every = view === "map" ? map.POLL_MS : jobs.POLL_MS;
  if (view !== "submit") timer = setTimeout(() => tick(gen), every);
}

function restart() {
  generation += 1;
  if (timer) clearTimeout(timer);
  timer = null;
  tick(generation);
}

function show() {
  const next = route();
  const changed = !current || current.view !== next.view || current.id !== next.id;
  current = next;
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== next.view;
  for (const a of document.querySelectorAll("nav a")) {
    const on = a.dataset.view === next.view || (next.view === "job" && a.dataset.view === "jobs");
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (next.view !== "job") jobs.stopLogs();
  if (next.view === "job") jobs.openJob(next.id);
  if (changed) {
    const title = $(`${next.view}-title`);
    document.title = `mesos-gpu: ${title.textContent}`;
    title.focus({ preventScroll: true });
  }
  restart();
}

function signIn(event) {
  event.preventDefault();
  setToken($("token").value.trim());
  $("token").value = "";
  $("login-error").textContent = "";
  $("login").hidden = true;
  $("signout").hidden = !token();
  show();
  get("v1/cluster/map").catch((err) => { if (err.status === 401) $("login-error").textContent = "That token was refused."; });
}

function askForToken() {
  const wasShown = !$("login").hidden;
  $("login").hidden = false;
  if (token()) $("login-error").textContent = "The API refused the token: sign in again.";
  status("Signed out");
  if (!wasShown) $("token").focus();
}

function start() {
  onUnauthorized(askForToken);
  $("login-form").addEventListener("submit", signIn);
  $("signout").hidden = !token();
  $("signout").addEventListener("click", () => { setToken(""); $("signout").hidden = true; askForToken(); });
  document.addEventListener("announce", (e) => status(e.detail));
  document.addEventListener("visibilitychange", () => { if (!document.hidden) restart(); });
  window.addEventListener("hashchange", () => { if (location.hash !== "#main") show(); });
  map.setup();
  jobs.setup(() => jobs.pollList());
  submit.setup((id) => { location.hash = jobHref(id); });
  submit.loadTemplates();
  show();
}

start();
