// Users: who may use the cabinet, and who is locked out after repeated wrong PINs. An administrator clears a
// lockout with a reason (one ledger entry) so the user can log in at once instead of waiting it out.
import { fill, h, when, words } from "/common/dom.js";
import { clearMessage, messageBox, showDone, showInfo, showProblem } from "/common/messages.js";

export async function showUsers(ctx) {
  const message = messageBox("users-message");
  const list = h("div", { class: "table-wrap" });
  const form = h("div", { id: "lockout-form" });
  ctx.show(
    h("section", { "aria-labelledby": "users-title" }, h("h1", { id: "users-title" }, "Users"), message, form, list),
  );
  const stop = ctx.onEvent((event) => {
    if (event.type === "ledger" && event.category === "session") load();
  });
  ctx.leaving = stop;

  async function load() {
    try {
      const users = await ctx.api.get("/api/v1/admin/users");
      render(users);
    } catch (problem) {
      showProblem(message, problem, "Cannot list the users");
    }
  }

  function state(u) {
    if (u.locked_out) return h("span", { class: "chip stop" }, "locked out");
    if (!u.active) return h("span", { class: "chip" }, "inactive");
    if (!u.usable) return h("span", { class: "chip warn" }, "expired");
    return h("span", { class: "chip go" }, "active");
  }

  function render(users) {
    fill(
      list,
      h(
        "table",
        { id: "users-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["User", "Roles", "State", "Failed logins", ""].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        h(
          "tbody",
          {},
          users.map((u) =>
            h(
              "tr",
              { dataset: { user: u.user_id, locked: String(u.locked_out) } },
              h("th", { scope: "row" }, u.display_name, h("span", { class: "hint" }, ` ${u.user_id}`)),
              h("td", {}, u.roles.map(words).join(", ")),
              h("td", {}, state(u), u.expires_at ? h("span", { class: "hint" }, ` until ${when(u.expires_at)}`) : null),
              h("td", {}, String(u.failed_logins)),
              h(
                "td",
                {},
                u.locked_out || u.failed_logins > 0
                  ? h(
                      "button",
                      { type: "button", class: "small", dataset: { clear: u.user_id }, onclick: () => ask(u) },
                      "Clear lockout",
                    )
                  : null,
              ),
            ),
          ),
        ),
      ),
    );
  }

  function ask(u) {
    clearMessage(message);
    const reason = h("input", { id: "lockout-reason", maxlength: 500, autocomplete: "off", required: true });
    const go = h("button", { type: "button", class: "primary", id: "lockout-submit" }, "Clear lockout");
    go.addEventListener("click", async () => {
      if (!reason.value.trim()) {
        showInfo(message, "Say why the lockout is cleared: the reason goes in the ledger.");
        reason.focus();
        return;
      }
      go.disabled = true;
      try {
        await ctx.api.post(`/api/v1/admin/users/${encodeURIComponent(u.user_id)}/lockout/clear`, {
          reason: reason.value.trim(),
        });
        fill(form);
        showDone(message, `Lockout of ${u.user_id} cleared: they may log in now.`);
        load();
      } catch (problem) {
        go.disabled = false;
        showProblem(message, problem, "Lockout not cleared");
      }
    });
    fill(
      form,
      h(
        "div",
        { class: "inline-form", role: "group", "aria-label": `Clear the lockout of ${u.user_id}` },
        h("h2", {}, `Clear the lockout of ${u.display_name} (${u.user_id})`),
        h("label", { for: "lockout-reason" }, "Reason (recorded in the ledger)"),
        reason,
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

  load();
}
