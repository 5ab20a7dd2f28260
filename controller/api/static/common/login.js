// Logging in at the cabinet: user ID with a PIN from the keypad, and/or a badge (a badge reader types into its
// field like a keyboard). The token the cabinet returns lives as long as the cabinet session.
import { h, when } from "./dom.js";
import { keypad } from "./keypad.js";
import { messageBox, showInfo, showProblem } from "./messages.js";

/**
 * @param {import("./api.js").Api} api
 * @param {{onLoggedIn: (session: object) => void, note?: string, path?: string, badge?: boolean}} options
 *   ``path``: where to sign in (the cabinet's session by default); ``badge``: offer the badge field.
 * @returns {{element: HTMLElement, focus: () => void, say: (text: string) => void}}
 */
export function loginForm(api, { onLoggedIn, note = "", path = "/api/v1/cabinet/session", badge: withBadge = true }) {
  const message = messageBox("login-message");
  const userId = h("input", {
    id: "login-user",
    name: "user",
    autocomplete: "username",
    autocapitalize: "characters",
    required: true,
  });
  const badge = h("input", { id: "login-badge", name: "badge", autocomplete: "off" });
  let busy = false;
  const submit = async () => {
    if (busy) return;
    const body = { user_id: userId.value.trim().toUpperCase() };
    if (pin.value) body.pin = pin.value;
    if (badge.value.trim()) body.badge = badge.value.trim();
    if (!body.user_id) {
      showInfo(message, "Enter your user ID first.");
      userId.focus();
      return;
    }
    if (!body.pin && !body.badge) {
      showInfo(message, withBadge ? "Enter your PIN on the keypad, or scan your badge." : "Enter your PIN.");
      pin.focus();
      return;
    }
    busy = true;
    showInfo(message, "Checking…");
    try {
      const session = await api.post(path, body);
      api.setToken(session.token);
      pin.clear();
      badge.value = "";
      showInfo(message, "");
      onLoggedIn(session);
    } catch (problem) {
      pin.clear();
      showProblem(message, explained(problem, body.user_id), "Login refused");
    } finally {
      busy = false;
    }
  };
  userId.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      pin.focus();
    }
  });
  badge.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      submit();
    }
  });
  const pin = keypad({
    id: "login-pin",
    label: "PIN",
    masked: true,
    maxLength: 12,
    onSubmit: submit,
    submitLabel: "Log in",
  });
  const element = h(
    "form",
    { id: "login", class: "login", onsubmit: (event) => (event.preventDefault(), submit()) },
    h(
      "div",
      { class: "login-fields" },
      h("h2", {}, "Log in"),
      note ? h("p", { class: "hint" }, note) : null,
      h("label", { for: "login-user" }, "User ID"),
      userId,
      withBadge ? h("label", { for: "login-badge" }, "Badge (scan or type)") : null,
      withBadge ? badge : null,
      message,
    ),
    pin.element,
  );
  return {
    element,
    focus: () => userId.focus(),
    say: (text) => showInfo(message, text),
  };
}

/** A login refusal in the words a person at the cabinet needs: how many tries are left before the lockout (and
 * a warning before the last one), and for a lockout until when, in local time, and whom to ask. */
function explained(problem, userId) {
  const left = problem.data?.attempts_left ?? problem.context?.attempts_left;
  if (problem.code === "auth.bad_credentials" && Number.isInteger(left)) {
    const tries =
      left === 1
        ? `1 attempt left: one more wrong PIN locks ${userId} out`
        : left > 0
          ? `${left} attempts left before the lockout`
          : `${userId} is now locked out`;
    return { code: problem.code, detail: `Wrong user ID or PIN (${tries}).` };
  }
  if (problem.code === "session.locked_out") {
    const until = problem.context?.until;
    const ends = until ? `until ${when(until)}` : "until an administrator clears it";
    return {
      code: problem.code,
      detail: `${userId} is locked out after repeated wrong PINs, ${ends}. A pharmacist or the cabinet's administrator can clear it sooner.`,
    };
  }
  return problem;
}

