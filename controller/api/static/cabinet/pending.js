// The nurse's pending list: wastes put off (or whose witness step was cancelled or abandoned at a logoff, or lost
// to a restart of the controller), each due by the end of the shift; one touch records it with a witness. Below
// them, other actions of this user still waiting for their witness (a controlled return), which also come back
// after a restart.
import { h, words, when } from "/common/dom.js";
import { messageBox, showDone, showInfo, showProblem } from "/common/messages.js";
import { askWitness } from "/common/witness.js";
import { showWaste } from "./waste.js";

export async function showPending(ctx, { said = "" } = {}) {
  const message = messageBox("pending-message");
  const list = h("ul", { class: "pending-list", "aria-label": "Pending wastes and witness steps" });
  ctx.show(
    h(
      "section",
      { class: "pending", "aria-labelledby": "pending-title" },
      h("h1", { id: "pending-title" }, "Pending"),
      list,
      message,
    ),
  );
  if (said) showDone(message, said);
  try {
    const { wastes, witness_steps: all } = await ctx.api.get("/api/v1/cabinet/session/pending");
    const steps = all.filter((s) => s.kind !== "waste"); // a waste's step is begun from its row above
    if (wastes.length + steps.length === 0) list.append(h("li", { class: "hint" }, "Nothing pending."));
    const names = await patientNames(ctx, wastes.map((w) => w.patient_id));
    for (const w of wastes) {
      list.append(
        h(
          "li",
          { class: w.escalated ? "pending-waste escalated" : "pending-waste", dataset: { waste: w.waste_id } },
          h("span", { class: "item" }, w.item_name || w.item_id),
          h("span", {}, `${w.removed_amount} ${w.unit} removed from ${w.pocket_id} for ${names.get(w.patient_id)}`),
          h(
            "span",
            { class: w.escalated ? "chip stop" : "chip warn" },
            w.escalated ? `overdue since ${when(w.due)}` : `due ${when(w.due)}`,
          ),
          h(
            "button",
            {
              type: "button",
              class: "primary",
              onclick: () => showWaste(ctx, { wasteId: w.waste_id, itemName: w.item_name || w.item_id, unit: w.unit }),
            },
            "Waste now",
          ),
        ),
      );
    }
    for (const step of steps) {
      list.append(
        h(
          "li",
          { class: "pending-witness", dataset: { witness: step.target_id, kind: step.kind } },
          h("span", { class: "item" }, `${words(step.kind)} ${step.target_id}`),
          h("span", { class: "chip warn" }, "waits for a witness"),
          h("button", { type: "button", class: "primary", onclick: () => witness(step) }, "Get a witness"),
        ),
      );
    }
    ctx.refreshPending();
  } catch (problem) {
    showProblem(message, problem, "Cannot read the pending list");
  }

  async function witness(step) {
    try {
      await ctx.api.post("/api/v1/cabinet/session/witness", { kind: step.kind, target_id: step.target_id });
    } catch (problem) {
      showProblem(message, problem, "Cannot start the witness step");
      return;
    }
    const outcome = await askWitness(ctx.api, {
      title: `Witness the ${words(step.kind).toLowerCase()}`,
      what: `${ctx.session.display_name}: ${words(step.kind).toLowerCase()} ${step.target_id}.`,
    });
    if (outcome.signed) {
      showPending(ctx, { said: `${words(step.kind)} ${step.target_id} witnessed and recorded.` });
    } else {
      showInfo(message, "Witness cancelled: the action still waits for a witness.");
    }
  }
}

/** "Family, Given (MRN)" for each patient id; the id alone where the patient cannot be read (no longer admitted
 * here). */
async function patientNames(ctx, ids) {
  const names = new Map();
  for (const id of new Set(ids.filter(Boolean))) {
    try {
      const p = await ctx.api.get(`/api/v1/patients/${encodeURIComponent(id)}`);
      names.set(id, `${p.family_name}, ${p.given_name} (${id})`);
    } catch {
      names.set(id, id);
    }
  }
  return names;
}

