// The fleet console at the central server: a pharmacist or technician signs in with their directory PIN, then
// sees every cabinet (link, last contact, entries waiting, alarms, stock-outs), finds an item across the fleet,
// and prints one pick list for the restock round. A cabinet's own console (its per-cabinet views) opens from its
// row. The board refreshes itself every 10 s without counting as activity, so an unattended console signs off.
import { Api } from "/common/api.js";
import { $, fill, h, when, words } from "/common/dom.js";
import { loginForm } from "/common/login.js";
import { messageBox, showInfo, showProblem } from "/common/messages.js";

const REFRESH_MS = 10_000;
const api = new Api("adc.fleet.token");
let refresh = null;

const SECTIONS = [
  { id: "cabinets", title: "Cabinets", show: showCabinets },
  { id: "find", title: "Global Find", show: showFind },
  { id: "picklist", title: "Pick list", show: showPickList },
  { id: "alarms", title: "Alarms", show: showAlarms },
];

api.onSessionEnded = (problem) => ended(`You were signed out: ${problem.detail} (${problem.code})`);

function show(...children) {
  clearInterval(refresh);
  refresh = null;
  fill($("#panel"), ...children);
}

function open(id) {
  const section = SECTIONS.find((s) => s.id === id) || SECTIONS[0];
  for (const tab of $("#tabs").children) tab.setAttribute("aria-current", String(tab.dataset.section === section.id));
  section.show();
}

/** Fill ``body`` now and every REFRESH_MS while the section is on screen. */
function live(load, body, message, stamp) {
  const run = async (activity) => {
    try {
      fill(body, await load(activity));
      stamp.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      showInfo(message, "");
    } catch (problem) {
      showProblem(message, problem, "Could not load");
    }
  };
  run(true);
  refresh = setInterval(() => run(false), REFRESH_MS);
}

const STATUS_CHIP = { stock_out: "stop", below_min: "warn", below_par: "warn", ok: "go", above_max: "warn" };
const chip = (status) => h("span", { class: `chip ${STATUS_CHIP[status] || ""}` }, words(status));
const num = (value) => h("td", { class: "num" }, value ?? "—");

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function showCabinets() {
  const message = messageBox("cabinets-message");
  const stamp = h("span", { class: "hint updated" });
  const body = h("tbody", { id: "cabinet-rows" });
  show(
    h("section", {}, h("div", { class: "heading-row" }, h("h2", {}, "Cabinets"), stamp), message,
      h("table", { id: "cabinets" },
        h("thead", {}, h("tr", {}, ...["Cabinet", "Care area", "Link", "Last contact", "Waiting to send",
          "Alarms", "Stock-outs", ""].map((c) => h("th", {}, c)))), body)),
  ); // prettier-ignore
  live(async (activity) => {
    const cabinets = await api.request("GET", "/api/v1/fleet/cabinets", undefined, { activity });
    if (cabinets.length === 0) return h("tr", {}, h("td", { colspan: 8 }, "No cabinet is registered yet."));
    return cabinets.map((c) =>
      h("tr", { dataset: { cabinet: c.cabinet_id }, class: c.link !== "up" || c.open_alarms ? "attention" : "" },
        h("td", {}, h("strong", {}, c.name), c.name !== c.cabinet_id ? ` (${c.cabinet_id})` : ""),
        h("td", {}, c.care_area || "—"),
        h("td", { class: `link-${c.link.split(" ")[0]}` }, words(c.link)),
        h("td", {}, ago(c.seconds_since_contact)),
        num(c.queued), num(c.open_alarms), num(c.stock_outs),
        h("td", {}, c.console_url
          ? h("a", { href: c.console_url, target: "_blank", rel: "noopener", class: "button small" }, "Open console")
          : h("span", { class: "hint" }, "no console address"))),
    ); // prettier-ignore
  }, body, message, stamp);
}

function pocketRows(rows) {
  return rows.map((r) =>
    h("tr", { dataset: { cabinet: r.cabinet_id, pocket: r.pocket_id } },
      h("td", {}, r.cabinet_name, h("br"), h("span", { class: "hint" }, r.care_area || "")), h("td", {}, r.pocket_id),
      h("td", {}, r.item_name), num(r.usable), num(r.on_hand), h("td", {}, r.next_expiry || "—"),
      h("td", {}, chip(r.status)), num(r.to_par)),
  ); // prettier-ignore
}

const POCKET_HEADINGS = ["Cabinet", "Pocket", "Item", "Usable", "On hand", "Next expiry", "Status",
  "To par"]; // prettier-ignore

function showFind() {
  const message = messageBox("find-message");
  const query = h("input", { id: "find-query", type: "search", placeholder: "Drug name or item id",
    autocomplete: "off", minlength: 2, maxlength: 100 }); // prettier-ignore
  const body = h("tbody", { id: "find-rows" });
  const result = h("p", { class: "hint", id: "find-summary" });
  const search = async () => {
    const text = query.value.trim();
    if (text.length < 2) {
      showInfo(message, "Type at least two letters of the drug's name.");
      return;
    }
    try {
      const rows = await api.get(`/api/v1/fleet/find?q=${encodeURIComponent(text)}`);
      const usable = rows.reduce((sum, r) => sum + r.usable, 0);
      const cabinets = new Set(rows.filter((r) => r.usable > 0).map((r) => r.cabinet_id)).size;
      result.textContent = rows.length
        ? `${usable} usable units in ${cabinets} cabinet(s); expired or quarantined units are not usable.`
        : `No cabinet stocks anything matching "${text}".`;
      fill(body, pocketRows(rows));
      showInfo(message, "");
    } catch (problem) {
      showProblem(message, problem, "Search refused");
    }
  };
  show(
    h("section", {}, h("h2", {}, "Global Find"),
      h("form", { class: "search", onsubmit: (e) => (e.preventDefault(), search()) },
        h("label", { for: "find-query", class: "sr-only" }, "Drug"), query,
        h("button", { type: "submit", class: "primary" }, "Find")),
      message, result,
      h("table", { id: "find" }, h("thead", {}, h("tr", {}, ...POCKET_HEADINGS.map((c) => h("th", {}, c)))), body)),
  ); // prettier-ignore
  query.focus();
}

function showPickList() {
  const message = messageBox("picklist-message");
  const stamp = h("span", { class: "hint updated" });
  const items = h("tbody", { id: "pick-items" });
  const body = h("tbody", { id: "pick-rows" });
  show(
    h("section", {}, h("div", { class: "heading-row" }, h("h2", {}, "Pick list"), stamp),
      h("p", { class: "hint" }, "Every pocket below par, stock-outs first; units bring usable stock to par and " +
        "never above the pocket's maximum."),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => window.print() }, "Print")),
      message,
      h("h3", {}, "To pull from the pharmacy"),
      h("table", { id: "pick-totals" }, h("thead", {}, h("tr", {}, h("th", {}, "Item"), h("th", { class: "num" },
        "Units"), h("th", { class: "num" }, "Pockets"))), items),
      h("h3", {}, "By cabinet"),
      h("table", { id: "picklist" }, h("thead", {}, h("tr", {}, ...POCKET_HEADINGS.map((c) => h("th", {}, c)))),
        body)),
  ); // prettier-ignore
  live(async (activity) => {
    const pick = await api.request("GET", "/api/v1/fleet/picklist", undefined, { activity });
    fill(items, pick.items.map((i) => h("tr", {}, h("td", {}, i.item_name), num(i.units), num(i.pockets))));
    return pick.pockets.length ? pocketRows(pick.pockets) : h("tr", {}, h("td", { colspan: 8 }, "Every pocket is at par."));
  }, body, message, stamp); // prettier-ignore
}

function showAlarms() {
  const message = messageBox("alarms-message");
  const stamp = h("span", { class: "hint updated" });
  const body = h("tbody", { id: "alarm-rows" });
  show(
    h("section", {}, h("div", { class: "heading-row" }, h("h2", {}, "Open alarms"), stamp), message,
      h("table", { id: "alarms" }, h("thead", {}, h("tr", {}, ...["Raised", "Cabinet", "Entry", "Code", "What"]
        .map((c) => h("th", {}, c)))), body)),
  ); // prettier-ignore
  live(async (activity) => {
    const alarms = await api.request("GET", "/api/v1/fleet/alarms", undefined, { activity });
    if (alarms.length === 0) return h("tr", {}, h("td", { colspan: 5 }, "No open alarm."));
    return alarms.map((a) =>
      h("tr", {}, h("td", {}, when(a.raised_at)), h("td", {}, a.cabinet_id), num(a.seq),
        h("td", {}, h("code", {}, a.code)), h("td", {}, a.detail)),
    ); // prettier-ignore
  }, body, message, stamp);
}

function signedIn(answer) {
  fill($("#who"), h("strong", {}, answer.display_name), ` (${answer.user_id})`);
  $("#logout").classList.remove("hidden");
  fill($("#tabs"), SECTIONS.map((s) =>
    h("button", { type: "button", class: "tab", dataset: { section: s.id }, onclick: () => open(s.id) }, s.title)),
  ); // prettier-ignore
  $("#tabs").classList.remove("hidden");
  open("cabinets");
}

function ended(text) {
  api.setToken(null);
  fill($("#who"));
  $("#logout").classList.add("hidden");
  $("#tabs").classList.add("hidden");
  showSignIn(text);
}

function showSignIn(text = "") {
  const form = loginForm(api, {
    onLoggedIn: signedIn,
    path: "/api/v1/central/session",
    badge: false,
    note: "Pharmacists and technicians sign in with their hospital directory PIN.",
  });
  show(h("section", { class: "login-screen" }, form.element));
  if (text) form.say(text);
  form.focus();
}

$("#logout").addEventListener("click", async () => {
  try {
    await api.del("/api/v1/central/session");
  } catch {
    // already ended
  }
  ended("Signed out.");
});

async function start() {
  if (api.token) {
    try {
      const answer = await api.request("GET", "/api/v1/central/session", undefined, { activity: false });
      signedIn({ ...answer, token: api.token });
      return;
    } catch {
      api.setToken(null);
    }
  }
  showSignIn();
}

start();
