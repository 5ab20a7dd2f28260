// Restock by scan: the pick list (pockets at or below minimum, with the quantity back to par) or any pocket;
// the pocket unlocks, the technician counts what is there before adding (blind count-back), scans each package
// (the cabinet checks the NDC against the pocket's item, refuses a wrong strength, an expired or recalled lot),
// a witness signs where the policy asks, and the restock is finished.
import { fill, h } from "/common/dom.js";
import { keypad } from "/common/keypad.js";
import { clearMessage, messageBox, showDone, showInfo, showProblem } from "/common/messages.js";
import { act, drawerAndPocket, gs1Package, simulatorAvailable } from "/common/simulator.js";
import { askWitness } from "/common/witness.js";

export async function showRestock(ctx, { pocketId = null } = {}) {
  const message = messageBox("restock-message");
  const pickList = h("div", { id: "pick-list", class: "table-wrap" });
  const flow = h("div", { id: "restock-flow", class: "restock-flow" });
  const pocketSelect = h("select", { id: "restock-pocket" });
  const quantity = h("input", {
    id: "restock-quantity",
    type: "number",
    min: 0,
    max: 10000,
    inputmode: "numeric",
    placeholder: "from the pick list",
  });
  const kind = h(
    "select",
    { id: "restock-kind" },
    ["restock", "load", "unload"].map((k) => h("option", { value: k }, k)),
  );
  const startButton = h(
    "button",
    { type: "button", id: "restock-start", class: "primary" },
    "Start: unlock the pocket",
  );
  ctx.show(
    h(
      "section",
      { class: "restock", "aria-labelledby": "restock-title" },
      h("h1", { id: "restock-title" }, "Restock"),
      h(
        "div",
        { class: "restock-layout" },
        h(
          "div",
          {},
          h("h2", {}, "Pick list"),
          pickList,
          h(
            "div",
            { class: "inline-form", role: "group", "aria-label": "Restock a pocket" },
            h("h2", {}, "Any pocket"),
            h("label", { for: "restock-pocket" }, "Pocket"),
            pocketSelect,
            h(
              "div",
              { class: "two" },
              h("div", {}, h("label", { for: "restock-quantity" }, "Quantity to add"), quantity),
              h("div", {}, h("label", { for: "restock-kind" }, "Kind"), kind),
            ),
            startButton,
          ),
          message,
        ),
        flow,
      ),
    ),
  );
  const pockets = new Map();
  try {
    const [inventory, pick] = await Promise.all([
      ctx.api.get("/api/v1/inventory/pockets"),
      ctx.api.get("/api/v1/restock/pick-list"),
    ]);
    for (const p of inventory) if (p.item_id && p.drawer_kind !== "return_bin") pockets.set(p.pocket_id, p);
    fill(
      pocketSelect,
      [...pockets.values()].map((p) =>
        h("option", { value: p.pocket_id, selected: p.pocket_id === pocketId }, `${p.pocket_id} · ${p.item}`),
      ),
    );
    fill(
      pickList,
      pick.lines.length === 0
        ? h("p", { class: "hint" }, "No pocket is at or below its minimum.")
        : h(
            "table",
            {},
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Pocket", "Item", "Add", ""].map((t) => h("th", { scope: "col" }, t)),
              ),
            ),
            h(
              "tbody",
              {},
              pick.lines.map((line) =>
                h(
                  "tr",
                  { dataset: { pick: line.pocket_id } },
                  h("th", { scope: "row" }, line.pocket_id),
                  h(
                    "td",
                    { class: "wrap" },
                    line.item_name,
                    line.controlled ? h("span", { class: "chip warn" }, "controlled") : null,
                  ),
                  h("td", { class: "num" }, line.quantity),
                  h(
                    "td",
                    {},
                    h(
                      "button",
                      { type: "button", class: "small primary", onclick: () => begin(line.pocket_id, null, "restock") },
                      "Restock",
                    ),
                  ),
                ),
              ),
            ),
          ),
    );
  } catch (problem) {
    showProblem(message, problem, "Cannot read the pockets");
  }
  startButton.addEventListener("click", () =>
    begin(pocketSelect.value, quantity.value === "" ? null : Number(quantity.value), kind.value),
  );

  function begin(pocket, qty, restockKind) {
    clearMessage(message);
    new RestockFlow(ctx, flow, pockets.get(pocket) || { pocket_id: pocket, item: pocket }).start(qty, restockKind);
  }
}

class RestockFlow {
  constructor(ctx, box, pocket) {
    this.ctx = ctx;
    this.api = ctx.api;
    this.box = box;
    this.pocket = pocket;
    this.view = null;
    this.scans = [];
    this.unlocked = [];
    this.message = messageBox("flow-message");
    this.body = h("div", { class: "flow-body" });
    this.sim = h("div", { class: "sim-inline hidden", "aria-label": "Simulated cabinet" });
    fill(
      box,
      h("h2", { id: "flow-title" }, `Restocking ${pocket.pocket_id}: ${pocket.item}`),
      this.body,
      this.message,
      this.sim,
    );
  }

  /** The restock in progress: every step names it. */
  get path() {
    return `/api/v1/restocks/${encodeURIComponent(this.restockId)}`;
  }

  async start(quantity, kind) {
    const body = { pocket_id: this.pocket.pocket_id, kind };
    if (quantity !== null) body.quantity = quantity;
    try {
      const started = await this.api.post("/api/v1/restocks", body);
      this.restockId = started.restock.restock_id;
      this.unlocked = started.unlocked || [];
      showInfo(this.message, `${this.unlocked.join(", ") || "The pocket"} unlocked: open it.`);
      this.render(started.restock);
      this.simulator();
    } catch (problem) {
      showProblem(this.message, problem, "Cannot start");
    }
  }

  render(view) {
    this.view = view;
    const progress = h(
      "p",
      { class: "restock-progress", id: "restock-progress" },
      `${view.kind}: scanned ${view.scanned_quantity} of ${view.pick_quantity}`,
    );
    const cancel = h(
      "button",
      {
        type: "button",
        class: "danger",
        id: "restock-cancel",
        onclick: () => this.step("cancel", "Cancelled: nothing was added."),
      },
      "Cancel restock",
    );
    if (view.state === "count_back") {
      const pad = keypad({
        id: "count-back",
        label: `Count in ${view.pocket_id} now`,
        maxLength: 5,
        submitLabel: "Enter count-back",
        onSubmit: (v) => this.countBack(v),
      });
      fill(
        this.body,
        h(
          "p",
          {},
          "Count what is in the pocket before adding anything. The cabinet does not show the number it expects.",
        ),
        h("div", { class: "count-row" }, pad.element, h("div", {}, cancel)),
      );
      pad.focus();
    } else if (view.state === "scanning") {
      fill(
        this.body,
        progress,
        h("p", {}, "Scan each package as it goes in (hold it to the scanner, then press Scan)."),
        h(
          "div",
          { class: "actions" },
          h(
            "button",
            { type: "button", class: "primary big", id: "scan-package", onclick: (e) => this.scan(e.currentTarget) },
            "Scan next package",
          ),
          view.witness_required
            ? h(
                "button",
                { type: "button", class: "big", id: "restock-witness", onclick: () => this.witness() },
                "Witness…",
              )
            : null,
          h(
            "button",
            {
              type: "button",
              class: "big",
              id: "restock-finish",
              disabled: view.scanned_quantity === 0,
              onclick: () => this.step("finish", null),
            },
            "Finish restock",
          ),
          cancel,
        ),
        this.scanList(),
      );
    } else if (view.state === "awaiting_witness") {
      fill(
        this.body,
        progress,
        h("p", {}, "A witness signs for this controlled restock."),
        h(
          "div",
          { class: "actions" },
          h(
            "button",
            { type: "button", class: "primary big", id: "restock-witness", onclick: () => this.witness() },
            "Witness…",
          ),
          cancel,
        ),
      );
    } else if (view.state === "done") {
      fill(this.body, progress, this.scanList());
    } else {
      fill(this.body, progress);
    }
  }

  scanList() {
    return h(
      "ul",
      { class: "scans", id: "scans" },
      this.scans.map((s) =>
        h(
          "li",
          { class: s.ok ? "scan ok" : "scan bad" },
          h("span", { class: s.ok ? "chip go" : "chip stop" }, s.ok ? "match" : s.verdict || "refused"),
          " ",
          s.text,
        ),
      ),
    );
  }

  async countBack(value) {
    if (value === "") {
      showInfo(this.message, "Enter the number you counted (0 if empty).");
      return;
    }
    try {
      const answer = await this.api.post(`${this.path}/count-back`, { count: Number(value) });
      showInfo(this.message, "Count-back recorded. Scan the packages.");
      this.render(answer.restock);
    } catch (problem) {
      showProblem(this.message, problem, "Count-back refused");
    }
  }

  async scan(button) {
    button.disabled = true;
    showInfo(this.message, "Waiting for the scanner (10 s)…");
    try {
      const answer = await this.api.post(`${this.path}/scan`, { units: 1, timeout_s: 10 });
      const s = answer.scan || {};
      this.scans.push({
        ok: true,
        text: `NDC ${s.ndc10 || "?"} · lot ${s.lot || "?"} · expires ${s.expiry || "?"}${s.short_dated ? " (short-dated)" : ""}`,
      });
      showDone(this.message, `Package accepted: lot ${s.lot}, expires ${s.expiry}.`);
      this.render(answer.restock);
    } catch (problem) {
      const s = problem.data?.scan;
      if (s) this.scans.push({ ok: false, verdict: s.verdict, text: s.reason || problem.detail });
      showProblem(this.message, problem, "Package refused");
      if (problem.data?.restock) this.render(problem.data.restock);
      else button.disabled = false;
    }
  }

  async witness() {
    const outcome = await askWitness(this.api, {
      title: "Witness the restock",
      what: `${this.ctx.session.display_name} restocks ${this.view.scanned_quantity} × ${this.pocket.item} into ${this.pocket.pocket_id}.`,
      signPath: `${this.path}/witness`,
      cancelPath: null,
    });
    if (outcome.signed) {
      showDone(this.message, `Witnessed by ${outcome.signed.witness_id || "the witness"}.`);
      if (outcome.signed.restock) this.render(outcome.signed.restock);
    } else {
      showInfo(this.message, "No witness yet: the restock waits; finish needs the witness.");
    }
  }

  async step(action, text) {
    try {
      const answer = await this.api.post(`${this.path}/${action}`);
      this.render(answer.restock);
      if (action === "finish") {
        showDone(
          this.message,
          `Restocked ${this.pocket.pocket_id}: ${answer.restock.scanned_quantity} added. Close the drawer.`,
        );
      } else {
        showInfo(this.message, text);
      }
    } catch (problem) {
      showProblem(this.message, problem, action === "finish" ? "Cannot finish" : "Cannot cancel");
    }
  }

  /** On a simulated cabinet: buttons for the technician's hands and for a package in front of the scanner. */
  async simulator() {
    if (!(await simulatorAvailable(this.api))) return;
    const where = drawerAndPocket(this.pocket.pocket_id);
    if (!where) return;
    const simMessage = messageBox("sim-message");
    const button = (text, device, action, args) =>
      h(
        "button",
        {
          type: "button",
          class: "secondary small",
          dataset: { sim: action },
          onclick: async () => {
            try {
              const resolved = typeof args === "function" ? await args() : args;
              await act(this.api, device, action, resolved);
              showInfo(simMessage, `${text}: done.`);
            } catch (problem) {
              showProblem(simMessage, problem);
            }
          },
        },
        text,
      );
    const lidded = this.unlocked.includes(this.pocket.pocket_id);
    const lid = { drawer: where.drawer, pocket: where.pocket };
    fill(
      this.sim,
      h("span", { class: "sim-title" }, "Simulator (your hands):"),
      button(`Open drawer ${where.drawer}`, "io_board", "open_drawer", { drawer: where.drawer }),
      lidded ? button("Lift lid", "io_board", "lift_lid", lid) : null,
      button("Present a package of this item", "scanner", "present", () => this.package()),
      lidded ? button("Close lid", "io_board", "close_lid", lid) : null,
      button(`Close drawer ${where.drawer}`, "io_board", "close_drawer", { drawer: where.drawer }),
      simMessage,
    );
    this.sim.classList.remove("hidden");
  }

  /** A GS1 DataMatrix package of the pocket's item: its NDC from the formulary search, a lot, two years' shelf life. */
  async package() {
    const words = (this.pocket.item || "")
      .toLowerCase()
      .split(/[^a-z]+/)
      .filter((w) => w.length >= 5);
    for (const word of words) {
      const found = await this.api.get(`/api/v1/medications/search?q=${encodeURIComponent(word)}`);
      const match = found.matches.find((m) => m.item_id === this.pocket.item_id);
      if (match) {
        const expiry = new Date();
        expiry.setFullYear(expiry.getFullYear() + 2);
        const serial = `SIM${Date.now() % 1000000}`;
        const text = gs1Package(match.ndc, { lot: "SIMLOT1", expiry, serial });
        if (text) return { barcode_text: text, symbology: "]d2" };
      }
    }
    throw Object.assign(new Error("no NDC"), {
      code: "sim.no_ndc",
      detail: `cannot make a package for ${this.pocket.item}: its NDC was not found`,
    });
  }
}
