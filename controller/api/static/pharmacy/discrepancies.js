// Discrepancies: each one raised by a count that did not match, until a pharmacist has reviewed it. Resolve with
// a reason code (and a witness for controlled substances: the second person signs here, and cancelling leaves the
// discrepancy open, said so on screen); then a pharmacist who was neither resolver nor witness reviews it.
import { fill, h, when, words } from "/common/dom.js";
import { clearMessage, messageBox, showDone, showInfo, showProblem } from "/common/messages.js";
import { askWitness } from "/common/witness.js";

const REASONS = [
  "miscount_previous",
  "miscount_current",
  "undocumented_removal",
  "undocumented_waste",
  "undocumented_return",
  "restock_error",
  "unresolved_unknown",
];

export async function showDiscrepancies(ctx) {
  const message = messageBox("discrepancy-message");
  const list = h("div", { class: "table-wrap" });
  const form = h("div", { id: "discrepancy-form" });
  ctx.show(
    h(
      "section",
      { "aria-labelledby": "discrepancy-title" },
      h("h1", { id: "discrepancy-title" }, "Discrepancies"),
      message,
      form,
      list,
    ),
  );
  const stop = ctx.onEvent((event) => {
    if (event.type === "ledger" && event.category === "discrepancy") load();
  });
  ctx.leaving = stop;

  async function load() {
    try {
      const { discrepancies } = await ctx.api.get("/api/v1/discrepancies");
      render(discrepancies);
    } catch (problem) {
      showProblem(message, problem, "Cannot list discrepancies");
    }
  }

  function render(rows) {
    if (rows.length === 0) {
      fill(list, h("p", { class: "hint" }, "No discrepancy waits for resolution or review."));
      return;
    }
    fill(
      list,
      h(
        "table",
        { id: "discrepancy-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            [
              "ID",
              "Pocket",
              "Item",
              "Expected / counted",
              "Raised by",
              "Resolve by",
              "State",
              "Resolver / witness",
              "",
            ].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        h(
          "tbody",
          {},
          rows.map((d) =>
            h(
              "tr",
              { dataset: { discrepancy: d.discrepancy_id, state: d.state } },
              h("th", { scope: "row" }, d.discrepancy_id),
              h("td", {}, d.pocket_id),
              h(
                "td",
                { class: "wrap" },
                d.item_name || d.item_id,
                d.controlled ? h("span", { class: "chip warn" }, "controlled") : null,
                d.count_required
                  ? h("span", { class: "chip stop", title: "Opened and not closed out: count the pocket first" },
                      "undocumented access")
                  : null,
              ),
              h("td", { class: "num" }, `${d.expected} / ${d.counted ?? "not counted"}`),
              h("td", {}, d.raised_by),
              h("td", {}, when(d.deadline), d.escalated ? h("span", { class: "chip stop" }, "escalated") : null),
              h(
                "td",
                { class: "state" },
                words(d.state),
                d.awaiting_witness ? h("span", { class: "chip warn" }, "awaiting witness") : null,
              ),
              h("td", {}, d.resolver_id ? `${d.resolver_id}${d.witness_id ? ` / ${d.witness_id}` : ""}` : ""),
              h("td", {}, actions(d)),
            ),
          ),
        ),
      ),
    );
  }

  function actions(d) {
    if ((d.state === "open" || d.state === "escalated") && ctx.can("resolve_discrepancy")) {
      return h(
        "button",
        {
          type: "button",
          class: "small primary",
          dataset: { resolve: d.discrepancy_id },
          onclick: () => resolveForm(d),
        },
        "Resolve…",
      );
    }
    if (d.state === "resolved" && ctx.can("review")) {
      return h(
        "button",
        { type: "button", class: "small primary", dataset: { review: d.discrepancy_id }, onclick: () => reviewForm(d) },
        "Review…",
      );
    }
    return null;
  }

  function resolveForm(d) {
    clearMessage(message);
    const reason = h(
      "select",
      { id: "resolve-reason" },
      REASONS.map((r) => h("option", { value: r }, words(r))),
    );
    const note = h("input", { id: "resolve-note", maxlength: 500, autocomplete: "off" });
    const go = h("button", { type: "button", class: "primary", id: "resolve-submit" }, "Resolve");
    go.addEventListener("click", async () => {
      go.disabled = true;
      try {
        const body = { reason: reason.value };
        if (note.value.trim()) body.note = note.value.trim();
        const answer = await ctx.api.post(
          `/api/v1/discrepancies/${encodeURIComponent(d.discrepancy_id)}/resolution`,
          body,
        );
        if (answer.state === "awaiting_witness") {
          const outcome = await askWitness(ctx.api, {
            title: "Witness the resolution",
            what: `${ctx.session.display_name} resolves discrepancy ${d.discrepancy_id} (${d.item_name || d.item_id} in ${d.pocket_id}) as "${words(reason.value).toLowerCase()}".`,
          });
          if (outcome.signed)
            showDone(
              message,
              `Discrepancy ${d.discrepancy_id} resolved by ${ctx.session.user_id}, witnessed by ${outcome.signed.witness_id}. A pharmacist who was neither now reviews it.`,
            );
          else showInfo(message, `Witness cancelled: discrepancy ${d.discrepancy_id} is not resolved and stays open.`);
        } else {
          showDone(message, `Discrepancy ${d.discrepancy_id} resolved.`);
        }
        fill(form);
        load();
      } catch (problem) {
        showProblem(message, problem, "Resolution refused");
      } finally {
        go.disabled = false;
      }
    });
    fill(
      form,
      h(
        "div",
        { class: "inline-form", role: "group", "aria-label": `Resolve ${d.discrepancy_id}` },
        h("h2", {}, `Resolve ${d.discrepancy_id}: ${d.item_name || d.item_id} in ${d.pocket_id}`),
        h("label", { for: "resolve-reason" }, "Reason"),
        reason,
        h("label", { for: "resolve-note" }, "Note (what you found)"),
        note,
        h(
          "div",
          { class: "actions" },
          go,
          h("button", { type: "button", class: "secondary", onclick: () => fill(form) }, "Close"),
        ),
      ),
    );
    reason.focus();
  }

  function reviewForm(d) {
    clearMessage(message);
    const note = h("input", { id: "review-note", maxlength: 500, autocomplete: "off" });
    const go = h("button", { type: "button", class: "primary", id: "review-submit" }, "Mark reviewed");
    go.addEventListener("click", async () => {
      go.disabled = true;
      try {
        await ctx.api.post(
          `/api/v1/discrepancies/${encodeURIComponent(d.discrepancy_id)}/review`,
          note.value.trim() ? { note: note.value.trim() } : {},
        );
        showDone(message, `Discrepancy ${d.discrepancy_id} reviewed and closed.`);
        fill(form);
        load();
      } catch (problem) {
        showProblem(message, problem, "Review refused");
      } finally {
        go.disabled = false;
      }
    });
    fill(
      form,
      h(
        "div",
        { class: "inline-form", role: "group", "aria-label": `Review ${d.discrepancy_id}` },
        h(
          "h2",
          {},
          `Review ${d.discrepancy_id}: resolved by ${d.resolver_id}${d.witness_id ? `, witnessed by ${d.witness_id}` : ""}`,
        ),
        h("label", { for: "review-note" }, "Review note (optional)"),
        note,
        h(
          "div",
          { class: "actions" },
          go,
          h("button", { type: "button", class: "secondary", onclick: () => fill(form) }, "Close"),
        ),
      ),
    );
    note.focus();
  }

  load();
}
