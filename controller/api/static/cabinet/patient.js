// One patient: their due orders (one touch starts the pull), the orders that cannot be pulled and why, and the
// formulary search (at least 5 characters, ISMP) for an override with a reason code.
import { fill, h, words } from "/common/dom.js";
import { clearMessage, messageBox, showInfo, showProblem } from "/common/messages.js";
import { startPull } from "./pull.js";

const MIN_SEARCH = 5;
const OVERRIDE_REASONS = [
  "rescue",
  "severe_pain",
  "emergent_procedure",
  "stat_order_pending_verification",
  "pharmacy_closed",
];

export function patientStrip(patient) {
  return h(
    "div",
    { class: "patient-strip", "aria-label": "Patient" },
    h("span", { class: "name" }, `${patient.family_name}, ${patient.given_name}`),
    h("span", {}, `Room ${patient.room}${patient.bed}`),
    h("span", {}, patient.patient_id),
    h("span", {}, `born ${patient.birth_date}`),
    patient.allergies.length
      ? patient.allergies.map((a) => h("span", { class: "chip stop" }, `Allergy: ${a}`))
      : h("span", { class: "chip" }, "No known allergies"),
  );
}

function orderLine(order) {
  return `${order.dose} ${order.dose_unit} ${order.route} · ${order.frequency}`;
}

export function scheduleChip(schedule) {
  return schedule ? h("span", { class: "chip warn" }, `C${schedule}`) : null;
}

export async function showPatient(ctx, patientId) {
  const message = messageBox("patient-message");
  ctx.show(h("section", { class: "patient" }, message));
  let patient;
  try {
    patient = await ctx.api.get(`/api/v1/patients/${encodeURIComponent(patientId)}`);
  } catch (problem) {
    showProblem(message, problem, "Cannot open the patient");
    return;
  }
  const orders = h("ul", { class: "orders", "aria-label": "Orders" });
  for (const order of patient.orders) {
    const pullable = order.due && order.stocked_here;
    const why = !order.stocked_here
      ? "not stocked in this cabinet"
      : order.status !== "active"
        ? `order ${order.status}`
        : !order.pharmacist_verified
          ? "waiting for pharmacist verification"
          : "";
    orders.append(
      h(
        "li",
        { class: pullable ? "order due" : "order not-due" },
        h(
          "button",
          {
            type: "button",
            class: pullable ? "order-button primary" : "order-button",
            disabled: !pullable,
            dataset: { order: order.order_id },
            "aria-describedby": `why-${order.order_id}`,
            onclick: () => startPull(ctx, patient, { order }),
          },
          h("span", { class: "item" }, order.item || order.item_id, " ", scheduleChip(order.dea_schedule)),
          h("span", { class: "dose" }, orderLine(order)),
        ),
        h("span", { id: `why-${order.order_id}`, class: "why" }, pullable ? (order.prn ? "PRN" : "scheduled") : why),
      ),
    );
  }
  ctx.show(
    h(
      "section",
      { class: "patient", "aria-labelledby": "patient-title" },
      h("h1", { id: "patient-title", class: "sr-only" }, `${patient.family_name}, ${patient.given_name}`),
      patientStrip(patient),
      h(
        "div",
        { class: "patient-body" },
        h("div", { class: "orders-panel" }, h("h2", {}, "Orders"), orders, message),
        searchPanel(ctx, patient),
      ),
    ),
  );
}

function searchPanel(ctx, patient) {
  const message = messageBox("search-message");
  const results = h("ul", { class: "results", "aria-label": "Search results" });
  const input = h("input", {
    id: "search",
    type: "search",
    autocomplete: "off",
    "aria-describedby": "search-hint",
    maxlength: 100,
  });
  const hint = h("p", { id: "search-hint", class: "hint" }, `Type at least ${MIN_SEARCH} letters of the drug name.`);
  // Not disabled (a disabled default button would swallow Enter): pressing it early explains the rule instead.
  const button = h("button", { type: "submit", id: "search-button", "aria-disabled": "true" }, "Search");
  input.addEventListener("input", () => {
    const n = input.value.trim().length;
    button.setAttribute("aria-disabled", String(n < MIN_SEARCH));
    hint.textContent =
      n >= MIN_SEARCH
        ? "Ready to search."
        : `Type at least ${MIN_SEARCH} letters of the drug name (${MIN_SEARCH - n} more).`;
  });
  const search = async (event) => {
    event.preventDefault();
    const q = input.value.trim();
    fill(results);
    if (q.length < MIN_SEARCH) {
      showInfo(
        message,
        `At least ${MIN_SEARCH} characters are needed so a short prefix cannot pick the wrong drug (ISMP).`,
      );
      return;
    }
    try {
      const found = await ctx.api.get(`/api/v1/medications/search?q=${encodeURIComponent(q)}`);
      clearMessage(message);
      if (found.matches.length === 0) showInfo(message, "No match in the formulary.");
      else if (!found.unique)
        showInfo(message, `${found.matches.length} matches: check the strength before you choose.`);
      for (const match of found.matches) results.append(resultLine(ctx, patient, match, message));
    } catch (problem) {
      showProblem(message, problem, "Search refused");
    }
  };
  return h(
    "form",
    { class: "search-panel", onsubmit: search, role: "search" },
    h("h2", {}, "Search (override)"),
    h("label", { for: "search" }, "Drug name"),
    h("div", { class: "search-row" }, input, button),
    hint,
    message,
    results,
  );
}

function resultLine(ctx, patient, match, message) {
  const flags = [
    scheduleChip(match.dea_schedule),
    match.high_alert ? h("span", { class: "chip stop" }, "High alert") : null,
    match.lasa ? h("span", { class: "chip warn" }, "Look-alike") : null,
  ];
  const stocked = match.pocket_ids.length > 0;
  return h(
    "li",
    { class: "result" },
    h("span", { class: "item" }, match.display_name, " ", flags),
    h("span", { class: "hint" }, stocked ? `in ${match.pocket_ids.join(", ")}` : "not stocked here"),
    h(
      "button",
      {
        type: "button",
        disabled: !stocked,
        dataset: { item: match.item_id },
        onclick: (event) => {
          // The confirm step takes the results' place, so the whole of it fits on the screen.
          const results = event.currentTarget.closest("ul");
          results.classList.add("hidden");
          results.after(overrideConfirm(ctx, patient, match, message, results));
        },
      },
      "Override…",
    ),
  );
}

/** The confirm step of an override: the reason code, and a plain statement of what is being done. */
function overrideConfirm(ctx, patient, match, message, results) {
  let reason = null;
  const go = h(
    "button",
    { type: "button", class: "primary", disabled: true, id: "override-confirm" },
    "Confirm override",
  );
  const choices = OVERRIDE_REASONS.map((code) =>
    h(
      "button",
      {
        type: "button",
        class: "reason",
        "aria-pressed": "false",
        dataset: { reason: code },
        onclick: (event) => {
          reason = code;
          for (const b of event.currentTarget.parentElement.children)
            b.setAttribute("aria-pressed", String(b === event.currentTarget));
          go.disabled = false;
        },
      },
      words(code),
    ),
  );
  go.addEventListener("click", () => {
    clearMessage(message);
    startPull(ctx, patient, { item: match, overrideReason: reason });
  });
  const panel = h(
    "div",
    { class: "override-confirm", role: "group", "aria-label": "Override reason" },
    h(
      "p",
      { class: "warning-text" },
      `Override: remove ${match.display_name} for ${patient.family_name} without a pharmacist-verified order. It goes to pharmacist review.`,
    ),
    h("div", { class: "reasons" }, choices),
    h(
      "div",
      { class: "actions" },
      go,
      h(
        "button",
        { type: "button", class: "secondary", onclick: () => (panel.remove(), results.classList.remove("hidden")) },
        "Back",
      ),
    ),
  );
  return panel;
}
