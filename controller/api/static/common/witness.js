// The witness step: a second person signs at the screen for one action of the logged-in user.
//
// It cannot be half-finished or lost: the dialog is modal, Escape does not close it, and it ends only by a
// signature the cabinet accepted or by an explicit cancel that the cabinet acknowledged (the engine then keeps
// the action: a waste goes to the pending-waste list, a resolution stays open). The caller says what happened.
import { h } from "./dom.js";
import { keypad } from "./keypad.js";
import { clearMessage, messageBox, showInfo, showProblem } from "./messages.js";

const SIGN = "/api/v1/cabinet/session/witness/signature";
const CANCEL = "/api/v1/cabinet/session/witness";
let open = null; // the step on screen: {finish}

/**
 * The session ended under an open witness step (logoff): close the dialog. The cabinet has already kept the
 * action (a waste on the pending list); returns whether a step was open, so the page can say so.
 */
export function abandonWitness() {
  if (!open) return false;
  open.finish({ cancelled: null, abandoned: true });
  return true;
}

/**
 * Ask for a witness. Resolves with {signed: data} or {cancelled: data} (data is the cabinet's answer).
 * @param {import("./api.js").Api} api
 * @param {{title: string, what: string, signPath?: string, cancelPath?: string|null}} options
 */
export function askWitness(api, { title, what, signPath = SIGN, cancelPath = CANCEL }) {
  return new Promise((resolve) => {
    const message = messageBox("witness-message");
    const userId = h("input", {
      id: "witness-user",
      name: "witness-user",
      autocomplete: "off",
      autocapitalize: "characters",
      required: true,
    });
    const badge = h("input", { id: "witness-badge", name: "witness-badge", autocomplete: "off" });
    let busy = false;
    const sign = async () => {
      if (busy) return;
      const body = { user_id: userId.value.trim().toUpperCase() };
      if (pin.value) body.pin = pin.value;
      if (badge.value.trim()) body.badge = badge.value.trim();
      if (!body.user_id || (!body.pin && !body.badge)) {
        showInfo(message, "The witness enters their user ID and their PIN (or scans their badge).");
        return;
      }
      busy = true;
      showInfo(message, "Checking the witness…");
      try {
        const data = await api.post(signPath, body);
        finish({ signed: data });
      } catch (problem) {
        pin.clear();
        showProblem(message, problem, "Witness refused");
      } finally {
        busy = false;
      }
    };
    const cancel = async () => {
      if (busy) return;
      busy = true;
      if (!cancelPath) {
        finish({ cancelled: null });
        return;
      }
      try {
        finish({ cancelled: await api.del(cancelPath) });
      } catch (problem) {
        // The step may already have ended (a logoff abandons it: the engine keeps the action all the same).
        finish({ cancelled: null, problem });
      }
    };
    const pin = keypad({
      id: "witness-pin",
      label: "Witness PIN",
      masked: true,
      maxLength: 12,
      onSubmit: sign,
      submitLabel: "Sign as witness",
    });
    const dialog = h(
      "dialog",
      {
        id: "witness-dialog",
        class: "witness",
        "aria-labelledby": "witness-title",
        "aria-describedby": "witness-what",
      },
      h("h2", { id: "witness-title" }, title),
      h("p", { id: "witness-what", class: "witness-what" }, what),
      h(
        "div",
        { class: "witness-body" },
        h(
          "div",
          { class: "witness-fields" },
          h("label", { for: "witness-user" }, "Witness user ID"),
          userId,
          h("label", { for: "witness-badge" }, "or badge"),
          badge,
          message,
          h(
            "button",
            { type: "button", id: "witness-cancel", class: "secondary", onclick: cancel },
            "Cancel witness step",
          ),
          h("p", { class: "hint" }, "Cancelling keeps the record: the cabinet tells you where it went."),
        ),
        pin.element,
      ),
    );
    dialog.addEventListener("cancel", (event) => event.preventDefault()); // Escape: only the buttons end it
    const finish = (outcome) => {
      open = null;
      clearMessage(message);
      dialog.close();
      dialog.remove();
      resolve(outcome);
    };
    open = { finish };
    document.body.append(dialog);
    dialog.showModal();
    userId.focus();
  });
}
