// The nurse's pending-waste list: wastes put off (or whose witness step was cancelled or abandoned at a logoff),
// each due by the end of the shift; one touch records it with a witness.
import { h, when } from "/common/dom.js";
import { messageBox, showProblem } from "/common/messages.js";
import { showWaste } from "./waste.js";

export async function showPending(ctx) {
  const message = messageBox("pending-message");
  const list = h("ul", { class: "pending-list", "aria-label": "Pending wastes" });
  ctx.show(
    h(
      "section",
      { class: "pending", "aria-labelledby": "pending-title" },
      h("h1", { id: "pending-title" }, "Pending wastes"),
      list,
      message,
    ),
  );
  try {
    const { wastes } = await ctx.api.get("/api/v1/wastes/pending");
    if (wastes.length === 0) list.append(h("li", { class: "hint" }, "Nothing pending."));
    for (const w of wastes) {
      list.append(
        h(
          "li",
          { class: w.escalated ? "pending-waste escalated" : "pending-waste", dataset: { waste: w.waste_id } },
          h("span", { class: "item" }, w.item_id),
          h("span", {}, `${w.removed_amount} ${w.unit} removed from ${w.pocket_id} for ${w.patient_id}`),
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
              onclick: () => showWaste(ctx, { wasteId: w.waste_id, itemName: w.item_id, unit: w.unit }),
            },
            "Waste now",
          ),
        ),
      );
    }
    ctx.refreshPending();
  } catch (problem) {
    showProblem(message, problem, "Cannot read the pending list");
  }
}
