// The pharmacy console: the same cabinet session as the touchscreen (a pharmacist or technician logs in with
// their PIN), then one section per job. Sections appear by privilege: a technician restocks; a pharmacist also
// resolves and reviews. Live events refresh what is on screen; nothing here polls in a way that would keep an
// idle session from logging off.
import { Api } from "/common/api.js";
import { $, fill, h } from "/common/dom.js";
import { EventStream } from "/common/events.js";
import { SessionWatch } from "/common/idle.js";
import { loginForm } from "/common/login.js";
import { abandonWitness } from "/common/witness.js";
import { showDashboard } from "./dashboard.js";
import { showDevices } from "./devices.js";
import { showDiscrepancies } from "./discrepancies.js";
import { showOverrides } from "./overrides.js";
import { showRestock } from "./restock.js";
import { showStock } from "./stock.js";
import { showUsers } from "./users.js";

const SECTIONS = [
  { id: "inventory", title: "Inventory & par", any: ["restock", "review", "administer"], show: showDashboard },
  { id: "discrepancies", title: "Discrepancies", any: ["resolve_discrepancy", "review"], show: showDiscrepancies },
  { id: "restock", title: "Restock", any: ["restock"], show: showRestock },
  { id: "stock", title: "Expiry & quarantine", any: ["restock", "review"], show: showStock },
  { id: "overrides", title: "Overrides", any: ["review"], show: showOverrides },
  { id: "devices", title: "Devices & temperature", any: [], show: showDevices },
  { id: "users", title: "Users", any: ["administer"], show: showUsers },
];

const api = new Api("adc.pharmacy.token");
const listeners = new Set();
const ctx = {
  api,
  session: null,
  panel: $("#panel"),
  leaving: null,
  can: (privilege) => Boolean(ctx.session?.privileges.includes(privilege)),
  onEvent(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  show(...children) {
    const leaving = ctx.leaving;
    ctx.leaving = null;
    leaving?.();
    fill(ctx.panel, ...children);
  },
  open: (sectionId, options) => open(sectionId, options),
};

const stream = new EventStream(
  (event) => {
    for (const listener of listeners) listener(event);
  },
  (connected) => {
    $("#link").textContent = connected ? "● live" : "○ reconnecting";
    $("#link").classList.toggle("down", !connected);
  },
);
const watch = new SessionWatch(api, {
  keepalivePath: () =>
    ["restock", "review", "administer"].some(ctx.can) ? "/api/v1/inventory/pockets" : "/api/v1/discrepancies",
  onWarn: (left) => {
    fill(
      $("#idle"),
      h("span", {}, `No activity: you will be logged off in ${left} s.`),
      h("button", { type: "button", class: "primary", id: "stay" }, "Stay logged in"),
    );
    $("#idle").classList.remove("hidden");
  },
  onClear: () => $("#idle").classList.add("hidden"),
});
api.onSessionEnded = (problem) => ended(`You were logged off: ${problem.detail} (${problem.code})`);

function visible() {
  return SECTIONS.filter((s) => s.any.length === 0 || s.any.some((p) => ctx.can(p)));
}

function open(sectionId, options = {}) {
  const section = visible().find((s) => s.id === sectionId) || visible()[0];
  for (const tab of $("#tabs").children) tab.setAttribute("aria-current", String(tab.dataset.section === section.id));
  section.show(ctx, options);
}

function loggedIn(session) {
  ctx.session = session;
  $("#cabinet-id").textContent = session.cabinet_id;
  fill($("#who"), h("strong", {}, session.display_name), ` (${session.user_id})`);
  $("#logout").classList.remove("hidden");
  fill(
    $("#tabs"),
    visible().map((s) =>
      h("button", { type: "button", class: "tab", dataset: { section: s.id }, onclick: () => open(s.id) }, s.title),
    ),
  );
  $("#tabs").classList.remove("hidden");
  stream.open(api.token);
  watch.start(session);
  open(visible()[0].id);
}

function ended(text) {
  if (abandonWitness())
    text = `${text} A resolution waiting for a witness was not recorded; the discrepancy stays open.`;
  ctx.session = null;
  api.setToken(null);
  stream.close();
  watch.stop();
  fill($("#who"));
  $("#logout").classList.add("hidden");
  $("#tabs").classList.add("hidden");
  showLogin(text);
}

function showLogin(text = "") {
  const form = loginForm(api, {
    onLoggedIn: loggedIn,
    note: "Pharmacists and technicians log in with their cabinet PIN.",
  });
  ctx.show(h("section", { class: "login-screen" }, form.element));
  if (text) form.say(text);
  form.focus();
}

$("#logout").addEventListener("click", async () => {
  try {
    await api.del("/api/v1/cabinet/session");
  } catch {
    // already ended
  }
  ended("Logged out.");
});

async function start() {
  if (api.token) {
    try {
      loggedIn(await api.request("GET", "/api/v1/cabinet/session", undefined, { activity: false }));
      return;
    } catch {
      api.setToken(null);
    }
  }
  showLogin();
}

start();
