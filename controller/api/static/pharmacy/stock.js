// Expiring and quarantined stock: lots expiring soon (and expired ones, which the cabinet already refuses to
// hand out), lots on hold with where they sit, the pharmacist's release-or-destroy decision, and a recall by NDC
// and lot that blocks the lot in every pocket at once.
import { fill, h, words } from "/common/dom.js";
import { clearMessage, messageBox, showDone, showProblem } from "/common/messages.js";

// The reason codes that fit each kind of hold (the cabinet refuses the others, and says why).
const DECISION_REASONS = {
  recall: { release: ["recall_withdrawn"], destroy: ["recalled"] },
  temperature_excursion: { release: ["within_stability_data"], destroy: ["outside_stability_data"] },
};
const ANY_REASON = {
  release: ["within_stability_data", "recall_withdrawn"],
  destroy: ["outside_stability_data", "recalled"],
};

export async function showStock(ctx) {
  const message = messageBox("stock-message");
  const days = h(
    "select",
    { id: "expiring-days" },
    [30, 60, 90, 180].map((d) => h("option", { value: d }, `${d} days`)),
  );
  const expiring = h("div", { class: "table-wrap", id: "expiring" });
  const held = h("div", { class: "table-wrap", id: "quarantine" });
  const form = h("div", { id: "quarantine-form" });
  const ndc = h("input", { id: "recall-ndc", autocomplete: "off", placeholder: "0409-1891-01", maxlength: 14 });
  const lot = h("input", { id: "recall-lot", autocomplete: "off", maxlength: 20 });
  const recall = h("button", { type: "button", id: "recall-submit", class: "danger" }, "Recall lot");
  ctx.show(
    h(
      "section",
      { "aria-labelledby": "stock-title" },
      h("h1", { id: "stock-title" }, "Expiring and quarantined stock"),
      message,
      h(
        "div",
        { class: "stock-layout" },
        h(
          "div",
          {},
          h("h2", {}, "Quarantined"),
          form,
          held,
          ctx.can("review")
            ? h(
                "div",
                { class: "inline-form", role: "group", "aria-label": "Recall a lot" },
                h("h2", {}, "Recall a lot"),
                h(
                  "div",
                  { class: "two" },
                  h("div", {}, h("label", { for: "recall-ndc" }, "NDC"), ndc),
                  h("div", {}, h("label", { for: "recall-lot" }, "Lot"), lot),
                ),
                recall,
              )
            : null,
        ),
        h(
          "div",
          {},
          h(
            "div",
            { class: "heading-row" },
            h("h2", {}, "Expiring"),
            h("label", { for: "expiring-days", class: "inline" }, "within"),
            days,
          ),
          expiring,
        ),
      ),
    ),
  );

  async function loadExpiring() {
    try {
      const lots = await ctx.api.get(`/api/v1/inventory/expiring?days=${days.value}`);
      fill(
        expiring,
        lots.length === 0
          ? h("p", { class: "hint" }, "Nothing expires in that window.")
          : h(
              "table",
              {},
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["Expiry", "Pocket", "Item", "Lot", "Qty"].map((t) => h("th", { scope: "col" }, t)),
                ),
              ),
              h(
                "tbody",
                {},
                lots.map((l) =>
                  h(
                    "tr",
                    { class: l.expired ? "expired" : "" },
                    h("td", {}, l.expiry, l.expired ? h("span", { class: "chip stop" }, "expired") : null),
                    h("th", { scope: "row" }, l.pocket_id),
                    h("td", {}, l.item),
                    h("td", {}, l.lot),
                    h("td", { class: "num" }, l.quantity),
                  ),
                ),
              ),
            ),
      );
    } catch (problem) {
      showProblem(message, problem, "Cannot read expiring lots");
    }
  }

  async function loadHeld() {
    try {
      const { quarantines } = await ctx.api.get("/api/v1/quarantine");
      fill(
        held,
        quarantines.length === 0
          ? h("p", { class: "hint" }, "No lot is on hold.")
          : h(
              "table",
              { id: "quarantine-table" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["Hold", "Item", "Lot", "Where", "State", ""].map((t) => h("th", { scope: "col" }, t)),
                ),
              ),
              h(
                "tbody",
                {},
                quarantines.map((q) =>
                  h(
                    "tr",
                    { dataset: { quarantine: q.quarantine_id } },
                    h("td", {}, h("span", { class: "chip stop" }, words(q.hold))),
                    h("td", {}, q.item_id),
                    h("td", {}, q.lot),
                    h(
                      "td",
                      {},
                      (q.unload || []).map((u) => u.pocket_id || JSON.stringify(u)).join(", ") ||
                        q.pocket_id ||
                        "everywhere",
                    ),
                    h("td", {}, words(q.state)),
                    h(
                      "td",
                      {},
                      ctx.can("review") && q.state === "awaiting_review"
                        ? h(
                            "button",
                            {
                              type: "button",
                              class: "small primary",
                              dataset: { decide: q.quarantine_id },
                              onclick: () => decide(q),
                            },
                            "Review…",
                          )
                        : null,
                    ),
                  ),
                ),
              ),
            ),
      );
    } catch (problem) {
      showProblem(message, problem, "Cannot read the holds");
    }
  }

  /** The pharmacist's decision on one hold, in a form above the table (release or destroy, a reason, a note). */
  function decide(q) {
    const reason = h("select", { id: "hold-reason" });
    const decision = h(
      "select",
      { id: "hold-decision" },
      ["release", "destroy"].map((d) => h("option", { value: d }, words(d))),
    );
    const note = h("input", { id: "hold-note", maxlength: 500, autocomplete: "off" });
    const reasons = DECISION_REASONS[q.hold] || ANY_REASON;
    const options = () =>
      fill(
        reason,
        reasons[decision.value].map((r) => h("option", { value: r }, words(r))),
      );
    decision.addEventListener("change", options);
    options();
    const go = h(
      "button",
      {
        type: "button",
        class: "primary",
        id: "hold-submit",
        onclick: async () => {
          try {
            const body = { decision: decision.value, reason: reason.value };
            if (note.value.trim()) body.note = note.value.trim();
            await ctx.api.post(`/api/v1/quarantine/${q.quarantine_id}/review`, body);
            showDone(
              message,
              `${q.item_id} lot ${q.lot}: ${decision.value === "release" ? "released" : "to be destroyed"}.`,
            );
            fill(form);
            loadHeld();
          } catch (problem) {
            showProblem(message, problem, "Decision refused");
          }
        },
      },
      "Record decision",
    );
    fill(
      form,
      h(
        "div",
        { class: "inline-form", role: "group", "aria-label": `Review hold ${q.quarantine_id}` },
        h("h2", {}, `${words(q.hold)} hold: ${q.item_id} lot ${q.lot}`),
        h(
          "div",
          { class: "two" },
          h("div", {}, h("label", { for: "hold-decision" }, "Decision"), decision),
          h("div", {}, h("label", { for: "hold-reason" }, "Reason"), reason),
        ),
        h("label", { for: "hold-note" }, "Note (a released recall names its withdrawal notice)"),
        note,
        h(
          "div",
          { class: "actions" },
          go,
          h("button", { type: "button", class: "secondary", onclick: () => fill(form) }, "Close"),
        ),
      ),
    );
    decision.focus();
  }

  recall.addEventListener("click", async () => {
    clearMessage(message);
    try {
      const answer = await ctx.api.post("/api/v1/recalls", { ndc: ndc.value.trim(), lot_number: lot.value.trim() });
      const where = (answer.unload || []).map((u) => u.pocket_id).filter(Boolean);
      showDone(
        message,
        `Lot ${answer.lot} of ${answer.item_id} is blocked everywhere${where.length ? `; unload it from ${where.join(", ")}` : ""}.`,
      );
      loadHeld();
    } catch (problem) {
      showProblem(message, problem, "Recall refused");
    }
  });
  days.addEventListener("change", loadExpiring);
  await Promise.all([loadExpiring(), loadHeld()]);
}
