// Overrides to review: every removal without a verified order waits here until a pharmacist who did not remove it
// says whether it was appropriate, an order followed, or it needs follow-up.
import { fill, h, when, words } from "/common/dom.js";
import { messageBox, showDone, showProblem } from "/common/messages.js";

const OUTCOMES = ["appropriate", "order_followed", "follow_up"];

export async function showOverrides(ctx) {
  const message = messageBox("override-message");
  const list = h("div", { class: "table-wrap" });
  ctx.show(
    h(
      "section",
      { "aria-labelledby": "override-title" },
      h("h1", { id: "override-title" }, "Overrides to review"),
      message,
      list,
    ),
  );

  async function load() {
    try {
      const { reviews } = await ctx.api.get("/api/v1/override-reviews");
      fill(
        list,
        reviews.length === 0
          ? h("p", { class: "hint" }, "No override waits for review.")
          : h(
              "table",
              { id: "override-table" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["Queued", "User", "Patient", "Item", "Reason", "Outcome"].map((t) => h("th", { scope: "col" }, t)),
                ),
              ),
              h(
                "tbody",
                {},
                reviews.map((r) =>
                  h(
                    "tr",
                    { dataset: { review: r.review_id } },
                    h("td", {}, when(r.queued_at)),
                    h("td", {}, r.user_id),
                    h("td", {}, r.patient_id || ""),
                    h("td", {}, r.item_id),
                    h("td", {}, words(r.reason)),
                    h(
                      "td",
                      {},
                      h(
                        "div",
                        { class: "actions" },
                        OUTCOMES.map((o) =>
                          h("button", { type: "button", class: "small", onclick: () => review(r, o) }, words(o)),
                        ),
                      ),
                    ),
                  ),
                ),
              ),
            ),
      );
    } catch (problem) {
      showProblem(message, problem, "Cannot read the queue");
    }
  }

  async function review(r, outcome) {
    try {
      await ctx.api.post(`/api/v1/override-reviews/${r.review_id}`, { outcome });
      showDone(message, `Override by ${r.user_id} (${r.item_id}) reviewed: ${words(outcome).toLowerCase()}.`);
      load();
    } catch (problem) {
      showProblem(message, problem, "Review refused");
    }
  }

  load();
}
