// Waste: the unused part of a removed dose, as an amount in the dose unit with a reason code (no free-text
// reasons). A controlled substance needs a licensed witness; cancelling that step never loses the waste: the
// cabinet moves it to the nurse's pending-waste list, and this screen says so after checking the list.
import { fill, h, when, words } from "/common/dom.js";
import { keypad } from "/common/keypad.js";
import { clearMessage, messageBox, showDone, showInfo, showProblem } from "/common/messages.js";
import { askWitness } from "/common/witness.js";
import { patientStrip } from "./patient.js";

const REASONS = [
  "partial_dose",
  "patient_refused",
  "order_changed",
  "prepared_not_given",
  "contaminated",
  "dropped_or_broken",
];
const UNITS = ["mg", "mcg", "g", "mL", "units", "mEq", "tablet"];

/**
 * @param {{patient?: object, pullId?: string, wasteId?: string, itemName: string, order?: object, unit?: string}} target
 */
export function showWaste(ctx, target) {
  const message = messageBox("waste-message");
  const unitChoice = target.unit || target.order?.dose_unit || "mg";
  const unit = h(
    "select",
    { id: "waste-unit" },
    [...new Set([unitChoice, ...UNITS])].map((u) => h("option", { value: u, selected: u === unitChoice }, u)),
  );
  const amount = keypad({ id: "waste-amount", label: "Amount wasted", decimal: true, maxLength: 9 });
  let reason = target.order ? "partial_dose" : null;
  const reasons = h(
    "div",
    { class: "reasons", role: "group", "aria-label": "Reason" },
    REASONS.map((code) =>
      h(
        "button",
        {
          type: "button",
          class: "reason",
          "aria-pressed": String(code === reason),
          dataset: { reason: code },
          onclick: (event) => {
            reason = code;
            for (const b of reasons.children) b.setAttribute("aria-pressed", String(b === event.currentTarget));
          },
        },
        words(code),
      ),
    ),
  );
  const note = h("input", { id: "waste-note", maxlength: 500, autocomplete: "off" });
  const record = h("button", { type: "button", id: "record-waste", class: "primary big" }, "Record waste");
  const later = target.pullId
    ? h("button", { type: "button", id: "waste-later", class: "secondary" }, "Waste later (pending list)")
    : null;
  const actions = h("div", { class: "actions" }, record, later);
  const after = h("div", { class: "actions", id: "waste-after" });

  const done = (...text) => {
    showDone(message, ...text);
    actions.classList.add("hidden");
    fill(
      after,
      target.patient
        ? h(
            "button",
            { type: "button", class: "big", id: "back-patient", onclick: () => ctx.patient(target.patient.patient_id) },
            "Back to the patient",
          )
        : null,
      h("button", { type: "button", class: "big", id: "open-pending", onclick: () => ctx.pending() }, "Pending wastes"),
    );
    ctx.refreshPending();
  };

  record.addEventListener("click", async () => {
    const value = amount.value;
    if (!/^\d+(\.\d{1,4})?$/.test(value) || Number(value) <= 0) {
      showInfo(message, `Enter the amount wasted in ${unit.value} (for example 0.5).`);
      amount.focus();
      return;
    }
    if (!reason) {
      showInfo(message, "Choose the reason for the waste.");
      return;
    }
    const body = { amount: value, unit: unit.value, reason };
    if (note.value.trim()) body.note = note.value.trim();
    if (target.wasteId) body.waste_id = target.wasteId;
    else if (target.pullId) body.pull_id = target.pullId;
    record.disabled = true;
    try {
      const answer = await ctx.api.post("/api/v1/wastes", body);
      const what = `${value} ${unit.value} of ${target.itemName} (${words(reason).toLowerCase()})`;
      if (answer.state === "recorded") {
        done(`Waste recorded: ${what}.`);
        return;
      }
      clearMessage(message);
      const outcome = await askWitness(ctx.api, {
        title: "Witness the waste",
        what: `${ctx.session.display_name} wastes ${what}. The witness watches the waste and signs.`,
      });
      if (outcome.signed) {
        done(`Waste recorded: ${what}, witnessed by ${outcome.signed.witness_id}.`);
      } else {
        await explainCancelled(ctx, answer.waste?.waste_id, message, done);
      }
    } catch (problem) {
      showProblem(message, problem, "Waste refused");
    } finally {
      record.disabled = false;
    }
  });
  later?.addEventListener("click", async () => {
    try {
      const answer = await ctx.api.post("/api/v1/wastes/deferred", { pull_id: target.pullId });
      done(
        `The waste is on your pending-waste list${answer.waste?.due ? ` (due ${when(answer.waste.due)})` : ""}. Record it with a witness before then.`,
      );
    } catch (problem) {
      showProblem(message, problem, "Not deferred");
    }
  });

  ctx.show(
    h(
      "section",
      { class: "waste", "aria-labelledby": "waste-title" },
      target.patient ? patientStrip(target.patient) : null,
      h(
        "div",
        { class: "waste-body" },
        h(
          "div",
          { class: "waste-form" },
          h("h1", { id: "waste-title" }, `Waste: ${target.itemName}`),
          target.order
            ? h("p", { class: "hint" }, `Ordered dose: ${target.order.dose} ${target.order.dose_unit}`)
            : null,
          h("label", { for: "waste-unit" }, "Unit"),
          unit,
          h("span", { class: "label" }, "Reason"),
          reasons,
          h("label", { for: "waste-note" }, "Note (optional)"),
          note,
          message,
          actions,
          after,
        ),
        amount.element,
      ),
    ),
  );
  amount.focus();
}

/** After a cancelled witness: find the waste on the pending list, and say where it is. */
async function explainCancelled(ctx, wasteId, message, done) {
  try {
    const { wastes } = await ctx.api.get("/api/v1/wastes/pending");
    const kept = wastes.find((w) => w.waste_id === wasteId);
    if (kept) {
      done(
        h("strong", {}, "Witness cancelled. "),
        `The waste was not lost: it is on your pending-waste list (due ${when(kept.due)}). Record it there with a witness before then.`,
      );
      return;
    }
  } catch {
    // fall through: say what is known
  }
  showProblem(message, {
    code: "waste.unconfirmed",
    detail: "The witness step was cancelled; open the pending-waste list to check where the waste is.",
  });
}
