// The pull: one dose for one patient, following the engine's states. Item chosen (against an order, or by
// override with its reason; an allergy the pharmacist has not weighed needs the nurse's confirmation), blind count
// (the expected number is never shown: the cabinet does not send it), the pocket unlocks and is lit, the nurse
// opens it and says what was taken, the drawer closes. Then waste or return from the same screen.
import { fill, h } from "/common/dom.js";
import { keypad } from "/common/keypad.js";
import { clearMessage, messageBox, showDone, showInfo, showProblem } from "/common/messages.js";
import { askWitness } from "/common/witness.js";
import { drawerAndPocket } from "/common/simulator.js";
import { patientStrip, scheduleChip } from "./patient.js";
import { showReturn } from "./returns.js";
import { showWaste } from "./waste.js";

const LIT = new Set(["ready", "unlocking", "open", "taken", "closed_unaccounted"]);
const MOVING = new Set(["ready", "unlocking", "open", "taken", "closed_unaccounted"]); // the cabinet acts: follow it
const CANCELLABLE = new Set(["patient_selected", "blind_count", "awaiting_witness", "ready", "unlocking"]);
const WARNING_LABELS = {
  high_alert: ["High alert", "stop"],
  look_alike_sound_alike: ["Look-alike", "warn"],
  allergy: ["Allergy", "stop"],
};

export function startPull(ctx, patient, choice) {
  new PullScreen(ctx, patient, choice).begin();
}

class PullScreen {
  constructor(ctx, patient, { order = null, item = null, overrideReason = null }) {
    this.ctx = ctx;
    this.api = ctx.api;
    this.patient = patient;
    this.order = order;
    this.item = item;
    this.overrideReason = overrideReason;
    this.itemName = order ? order.item || order.item_id : item.display_name;
    this.schedule = order ? order.dea_schedule : item.dea_schedule;
    this.pull = null;
    this.taken = 0;
    this.rendered = null; // the state the step panel shows
    this.closed = false;
    this.message = messageBox("pull-message");
    this.step = h("div", { id: "step", class: "step" });
    this.warnings = h("ul", { id: "warnings", class: "warnings", "aria-label": "Warnings" });
    this.pocket = h("div", { id: "pocket", class: "pocket" });
    this.state = h("ol", { class: "progress", "aria-label": "Steps" });
    ctx.show(
      h(
        "section",
        { class: "pull", "aria-labelledby": "pull-title" },
        patientStrip(patient),
        h(
          "div",
          { class: "pull-body" },
          h(
            "div",
            { class: "pull-info" },
            h("h1", { id: "pull-title", class: "pull-item" }, this.itemName, " ", scheduleChip(this.schedule)),
            h(
              "p",
              { class: "pull-dose" },
              order
                ? `Order: ${order.dose} ${order.dose_unit} ${order.route} · ${order.frequency}`
                : `Override: ${overrideReason.replaceAll("_", " ")}`,
            ),
            this.warnings,
            this.pocket,
            this.state,
          ),
          h("div", { class: "pull-action" }, this.step, this.message),
        ),
      ),
    );
    // The drawer's movements arrive as events; a second look shortly after catches a state the engine settles
    // just after its entry commits. Polling is only the fallback while the stream is down: a poll counts as
    // activity, and must not keep an abandoned session from logging off.
    this.stopEvents = ctx.onEvent((event) => {
      if (event.type === "ledger" && ["drawer", "dose", "alarm"].includes(event.category)) {
        this.refresh();
        setTimeout(() => this.refresh(), 600);
      }
    });
    this.poller = setInterval(() => {
      if (!ctx.live && this.pull && MOVING.has(this.pull.state)) this.refresh();
    }, 1000);
    ctx.leaving = () => {
      this.closed = true; // a second look still scheduled must not call the cabinet for a screen that is gone
      clearInterval(this.poller);
      this.stopEvents();
    };
  }

  get path() {
    return `/api/v1/pulls/${encodeURIComponent(this.pull.pull_id)}`;
  }

  async begin() {
    showInfo(this.message, "Starting the pull…");
    try {
      const started = await this.api.post("/api/v1/pulls", { patient_id: this.patient.patient_id });
      this.pull = started.pull;
    } catch (problem) {
      showProblem(this.message, problem, "Cannot start the pull");
      this.showStep(h("h2", {}, "Not started"), this.backButton());
      return;
    }
    await this.choose(false);
  }

  async choose(acknowledgeAllergies) {
    const body = this.order
      ? { order_id: this.order.order_id }
      : { item_id: this.item.item_id, override_reason: this.overrideReason };
    if (acknowledgeAllergies) body.acknowledge_allergies = true;
    try {
      const chosen = await this.api.post(`${this.path}/item`, body);
      clearMessage(this.message);
      this.render(chosen.pull);
    } catch (problem) {
      if (problem.code === "policy.allergy_not_acknowledged") {
        this.confirmAllergy(problem);
        return;
      }
      showProblem(this.message, problem, "Refused");
      this.showStep(h("h2", {}, "Cannot remove this item"), this.cancelButton("Back to the patient"));
    }
  }

  /** No pharmacist has weighed this allergy (override): the nurse confirms it, or stops. */
  confirmAllergy(problem) {
    clearMessage(this.message);
    this.showStep(
      h("h2", {}, "Allergy warning"),
      h("p", { class: "allergy-text", role: "alert" }, problem.detail),
      h("p", { class: "hint" }, `(${problem.code})`),
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          { type: "button", class: "danger", id: "confirm-allergy", onclick: () => this.choose(true) },
          "I have checked: continue",
        ),
        this.cancelButton("Stop: do not remove"),
      ),
    );
  }

  async refresh() {
    if (!this.pull || this.closed) return;
    try {
      this.render(await this.api.get(this.path));
    } catch (problem) {
      if (problem.status !== 401) showProblem(this.message, problem);
    }
  }

  render(pull) {
    this.pull = pull;
    this.renderInfo(pull);
    if (this.rendered === pull.state) return; // keep what the nurse is typing
    // A refused count belongs to the count step: once the pull has moved on, it is not shown under the next step.
    if (this.message.dataset.refusedIn && this.message.dataset.refusedIn !== pull.state) clearMessage(this.message);
    this.rendered = pull.state;
    const step = this[`step_${pull.state}`];
    if (step) step.call(this, pull);
    else this.showStep(h("h2", {}, pull.state), this.backButton());
  }

  renderInfo(pull) {
    fill(
      this.warnings,
      ...pull.warnings.map((w) => {
        const [label, tone] = WARNING_LABELS[w.code] || [w.code, "warn"];
        return h(
          "li",
          { class: `warning ${tone}`, dataset: { warning: w.code } },
          h("span", { class: `chip ${tone}` }, label),
          " ",
          w.message,
        );
      }),
    );
    const where = drawerAndPocket(pull.pocket_id);
    const lit = LIT.has(pull.state);
    this.pocket.dataset.lit = String(lit);
    fill(
      this.pocket,
      h("div", { class: "light", "aria-hidden": "true" }),
      h(
        "div",
        { class: "pocket-text" },
        h("div", { class: "pocket-id", id: "pocket-id" }, pull.pocket_id || "…"),
        where ? h("div", {}, `Drawer ${where.drawer} · pocket ${where.pocket}`) : null,
        h(
          "div",
          { id: "light-state", class: "light-state" },
          lit ? "Guiding light: on — this pocket is lit green" : "Guiding light: off until the pocket unlocks",
        ),
      ),
    );
    if (pull.pocket_id) this.ctx.simulator?.target(pull.pocket_id);
    const steps = [
      ["Count", ["blind_count"]],
      ["Open", ["ready", "unlocking"]],
      ["Take", ["open", "closed_unaccounted"]],
      ["Close", ["taken"]],
      ["Done", ["done"]],
    ].filter(([name]) => name !== "Count" || pull.blind_count_required);
    fill(
      this.state,
      ...steps.map(([name, states]) =>
        h(
          "li",
          {
            class: states.includes(pull.state) ? "current" : "",
            "aria-current": states.includes(pull.state) ? "step" : null,
          },
          name,
        ),
      ),
    );
  }

  showStep(...children) {
    fill(this.step, ...children);
    if (!this.step.contains(this.message)) this.step.after(this.message); // under the action, unless placed beside it
  }

  // --- one method per state --------------------------------------------------------------------------------

  step_patient_selected() {
    this.showStep(h("h2", {}, "Choosing the item…"), this.cancelButton());
  }

  step_blind_count(pull) {
    const pad = keypad({
      id: "count",
      label: `Count in ${pull.pocket_id}`,
      maxLength: 5,
      submitLabel: "Enter count",
      onSubmit: (value) => this.enterCount(value, pad),
    });
    this.showStep(
      h("h2", {}, "Blind count"),
      h(
        "p",
        { class: "step-text" },
        `Count the ${this.itemName} in ${pull.pocket_id}; the pocket unlocks when you enter it.`,
      ),
      h(
        "div",
        { class: "count-row" },
        pad.element,
        h(
          "div",
          { class: "side-actions" },
          h("p", { class: "hint" }, "Blind count: the cabinet does not show the number it expects."),
          this.cancelButton(),
          this.message,
        ),
      ),
    );
    pad.focus();
  }

  async enterCount(value, pad) {
    if (value === "") {
      showInfo(this.message, "Enter the number you counted (0 if the pocket is empty).");
      return;
    }
    pad.submit.disabled = true;
    try {
      const counted = await this.api.post(`${this.path}/count`, { count: Number(value) });
      clearMessage(this.message);
      this.render(counted.pull);
    } catch (problem) {
      pad.submit.disabled = false;
      showProblem(this.message, problem, "Count refused");
      this.message.dataset.refusedIn = this.rendered;
    }
  }

  async step_awaiting_witness(pull) {
    this.showStep(h("h2", {}, "Witness needed"), h("p", {}, "A second licensed person signs for this removal."));
    try {
      await this.api.post("/api/v1/cabinet/session/witness", { kind: "pull", target_id: pull.pull_id });
    } catch {
      // already begun (the cabinet may begin it itself): the signature below says if none is open
    }
    const outcome = await askWitness(this.api, {
      title: "Witness this removal",
      what: `${this.ctx.session.display_name} removes ${this.itemName} for ${this.patient.family_name}.`,
    });
    if (outcome.signed) {
      showDone(this.message, `Witnessed by ${outcome.signed.witness_id || "the witness"}.`);
      this.rendered = null;
      await this.refresh();
    } else {
      showInfo(this.message, "The witness step was cancelled. The pull waits for a witness; nothing was removed.");
      this.showStep(
        h("h2", {}, "Witness needed"),
        h(
          "div",
          { class: "actions" },
          h(
            "button",
            {
              type: "button",
              class: "primary",
              onclick: () => ((this.rendered = null), this.step_awaiting_witness(pull)),
            },
            "Ask a witness again",
          ),
          this.cancelButton(),
        ),
      );
    }
  }

  step_ready(pull) {
    this.step_unlocking(pull);
  }

  step_unlocking(pull) {
    const where = drawerAndPocket(pull.pocket_id);
    this.showStep(
      h("h2", {}, "Open the drawer"),
      h(
        "p",
        { class: "step-text" },
        where
          ? `Drawer ${where.drawer} is unlocked. Open it; pocket ${pull.pocket_id} is lit.`
          : `Open the lit pocket ${pull.pocket_id}.`,
      ),
      h("p", { class: "hint" }, "The screen moves on when the cabinet senses the drawer open."),
      this.cancelButton(),
    );
  }

  step_open(pull) {
    this.takeStep(
      pull,
      "Take the dose",
      `Take the ${this.itemName} from pocket ${pull.pocket_id}, then say how many you took.`,
    );
  }

  step_closed_unaccounted(pull) {
    this.takeStep(
      pull,
      "What did you take?",
      "The drawer closed before you said what you took. Say how many you took.",
    );
  }

  takeStep(pull, title, text) {
    const max = pull.max_quantity || 20;
    let quantity = 1;
    const shown = h("output", { id: "take-quantity", class: "quantity", "aria-live": "polite" }, "1");
    const set = (n) => {
      quantity = Math.min(max, Math.max(1, n));
      shown.textContent = String(quantity);
      take.textContent = `I took ${quantity}`;
    };
    const take = h(
      "button",
      { type: "button", id: "take", class: "primary big", onclick: () => this.take(quantity, take) },
      "I took 1",
    );
    const scan =
      pull.scan_required && !pull.package_scanned
        ? h("button", { type: "button", id: "scan", class: "big", onclick: () => this.scan() }, "Scan the package")
        : null;
    this.showStep(
      h("h2", {}, title),
      h("p", { class: "step-text" }, text),
      scan,
      h(
        "div",
        { class: "stepper", role: "group", "aria-label": "Quantity taken" },
        h("button", { type: "button", "aria-label": "one fewer", onclick: () => set(quantity - 1) }, "−"),
        shown,
        h("button", { type: "button", "aria-label": "one more", onclick: () => set(quantity + 1) }, "+"),
      ),
      take,
    );
    take.disabled = Boolean(scan);
  }

  async scan() {
    showInfo(this.message, "Hold the package to the scanner…");
    try {
      const scanned = await this.api.post(`${this.path}/scan`, { timeout_s: 10 });
      showDone(this.message, "Package verified.");
      this.rendered = null;
      this.render(scanned.pull);
    } catch (problem) {
      showProblem(this.message, problem, "Scan refused");
    }
  }

  async take(quantity, button) {
    button.disabled = true;
    try {
      const taken = await this.api.post(`${this.path}/take`, { quantity });
      this.taken = quantity;
      clearMessage(this.message);
      this.render(taken.pull);
    } catch (problem) {
      button.disabled = false;
      showProblem(this.message, problem, "Not recorded");
    }
  }

  step_taken(pull) {
    this.showStep(
      h("h2", {}, "Close the drawer"),
      h(
        "p",
        { class: "step-text" },
        `Close the lid of ${pull.pocket_id} and the drawer. The removal is recorded when the cabinet senses it closed.`,
      ),
    );
  }

  step_done(pull) {
    const amount = this.taken ? `${this.taken} × ` : "";
    showDone(this.message, `Removed ${amount}${this.itemName} from ${pull.pocket_id} for ${this.patient.family_name}.`);
    const context = {
      patient: this.patient,
      pullId: pull.pull_id,
      itemName: this.itemName,
      order: this.order,
      schedule: this.schedule,
    };
    this.showStep(
      h("h2", {}, "Removed"),
      h("p", { class: "step-text" }, "Waste the part of the dose that is not given, or return it unused."),
      h(
        "div",
        { class: "actions column" },
        h(
          "button",
          { type: "button", id: "waste-button", class: "primary big", onclick: () => showWaste(this.ctx, context) },
          "Waste part of this dose",
        ),
        h(
          "button",
          { type: "button", id: "return-button", class: "big", onclick: () => showReturn(this.ctx, context) },
          "Return it",
        ),
        h(
          "button",
          { type: "button", id: "finish", class: "big", onclick: () => this.ctx.patient(this.patient.patient_id) },
          "Finished",
        ),
      ),
    );
  }

  step_cancelled() {
    showInfo(this.message, "Pull cancelled: nothing was removed.");
    this.showStep(h("h2", {}, "Cancelled"), this.backButton());
  }

  step_failed() {
    showProblem(this.message, {
      code: "pull.failed",
      detail: "The pocket did not unlock; nothing was removed. Try again or call for service.",
    });
    this.showStep(h("h2", {}, "Not unlocked"), this.backButton());
  }

  step_stopped() {
    showProblem(this.message, {
      code: "pull.stopped",
      detail: "The count did not match; the pull was stopped and a discrepancy is open for pharmacy.",
    });
    this.showStep(h("h2", {}, "Stopped"), this.backButton());
  }

  // --- buttons ---------------------------------------------------------------------------------------------

  backButton(text = "Back to the patient") {
    return h(
      "button",
      { type: "button", id: "back", class: "big", onclick: () => this.ctx.patient(this.patient.patient_id) },
      text,
    );
  }

  cancelButton(text = "Cancel pull") {
    return h("button", { type: "button", id: "cancel-pull", class: "danger", onclick: () => this.cancel() }, text);
  }

  async cancel() {
    if (!this.pull || !CANCELLABLE.has(this.pull.state)) {
      this.ctx.patient(this.patient.patient_id);
      return;
    }
    try {
      const cancelled = await this.api.post(`${this.path}/cancel`);
      this.render(cancelled.pull);
    } catch (problem) {
      showProblem(this.message, problem, "Cannot cancel");
    }
  }
}
