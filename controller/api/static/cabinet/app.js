// The nurse's touchscreen at the cabinet: log in, the unit's patients, a patient's due orders, the pull with its
// blind count, waste with a witness, returns, the pending-waste list; alarms and the inactivity warning on top.
// This module wires the pieces together and owns the screen; each screen lives in its own module.
import { Api } from "/common/api.js";
import { $, fill, h } from "/common/dom.js";
import { EventStream } from "/common/events.js";
import { SessionWatch } from "/common/idle.js";
import { loginForm } from "/common/login.js";
import { abandonWitness } from "/common/witness.js";
import { simulatorAvailable } from "/common/simulator.js";
import { Alarms } from "./alarms.js";
import { showPatient } from "./patient.js";
import { showPatients } from "./patients.js";
import { showPending } from "./pending.js";
import { SimulatorPanel } from "./simpanel.js";

const api = new Api("adc.cabinet.token");
const listeners = new Set();
const ctx = {
  api,
  session: null,
  screen: $("#screen"),
  simulator: null,
  live: false, // the event stream is connected
  leaving: null, // a screen's clean-up, run before the next screen is shown
  onEvent(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  /** Replace the screen's content. */
  show(...children) {
    const leaving = ctx.leaving;
    ctx.leaving = null;
    leaving?.();
    fill(ctx.screen, ...children);
    ctx.simulator?.target(null);
  },
  patients: () => showPatients(ctx),
  patient: (patientId) => showPatient(ctx, patientId),
  pending: () => showPending(ctx),
  refreshPending,
  logout,
};

const alarms = new Alarms($("#alarms"));
const stream = new EventStream(
  (event) => {
    alarms.handle(event);
    if (event.type === "ledger" && event.event_type.startsWith("dose.waste")) refreshPending();
    for (const listener of listeners) listener(event);
  },
  (connected) => {
    ctx.live = connected;
    $("#link").textContent = connected ? "● live" : "○ reconnecting";
    $("#link").classList.toggle("down", !connected);
  },
);
const watch = new SessionWatch(api, {
  keepalivePath: () => "/api/v1/wastes/pending",
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

function loggedIn(session) {
  ctx.session = session;
  $("#cabinet-id").textContent = session.cabinet_id;
  fill($("#who"), h("strong", {}, session.display_name), ` (${session.user_id})`);
  for (const id of ["#logout", "#pending-button", "#patients-button"]) $(id).classList.remove("hidden");
  stream.open(api.token);
  watch.start(session);
  refreshPending();
  ctx.patients();
  if (!ctx.simulator) {
    simulatorAvailable(api).then((yes) => {
      if (yes && !ctx.simulator) ctx.simulator = new SimulatorPanel(api, $("#sim"));
    });
  }
  // The stream tells changes; what is already wrong at login (a warm refrigerator) comes from the devices.
  api.request("GET", "/api/v1/devices", undefined, { activity: false }).then(
    (devices) =>
      devices.io_board.environment && alarms.handle({ type: "environment", ...devices.io_board.environment }),
    () => {},
  );
}

function ended(text) {
  if (abandonWitness()) text = `${text} Any waste waiting for a witness is on your pending-waste list.`;
  ctx.session = null;
  api.setToken(null);
  stream.close();
  watch.stop();
  fill($("#who"));
  for (const id of ["#logout", "#pending-button", "#patients-button"]) $(id).classList.add("hidden");
  showLogin(text);
}

async function logout() {
  try {
    await api.del("/api/v1/cabinet/session");
  } catch {
    // already ended: the login screen follows either way
  }
  ended("Logged out.");
}

async function refreshPending() {
  if (!ctx.session) return;
  try {
    const { wastes, witness_steps: steps } = await api.get("/api/v1/cabinet/session/pending");
    const owed = wastes.length + steps.filter((s) => s.kind !== "waste").length;
    $("#pending-count").textContent = String(owed);
    $("#pending-button").classList.toggle("attention", owed > 0);
  } catch {
    // users without the remove privilege have no pending list; the patients screen says why
  }
}

function showLogin(text = "") {
  const form = loginForm(api, { onLoggedIn: loggedIn, note: "Enter your user ID and PIN, or scan your badge." });
  ctx.show(h("section", { class: "login-screen", "aria-label": "Log in" }, form.element));
  if (text) form.say(text);
  form.focus();
}

async function start() {
  try {
    const ready = await fetch("/ready");
    if (!ready.ok) {
      const problem = await ready.json();
      fill(ctx.screen, h("p", { class: "message problem", role: "alert" }, `${problem.detail} (${problem.code})`));
      setTimeout(start, 2000);
      return;
    }
  } catch {
    setTimeout(start, 2000);
    return;
  }
  if (api.token) {
    try {
      const session = await api.request("GET", "/api/v1/cabinet/session", undefined, { activity: false });
      loggedIn(session);
      return;
    } catch {
      api.setToken(null);
    }
  }
  showLogin();
}

$("#logout").addEventListener("click", logout);
$("#pending-button").addEventListener("click", () => ctx.pending());
$("#patients-button").addEventListener("click", () => ctx.patients());
start();
