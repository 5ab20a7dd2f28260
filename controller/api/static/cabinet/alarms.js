// Alarms from the event stream, as sentences a nurse can act on, shown on top of every screen until
// acknowledged. Only conditions that need a person: tamper, a drawer left open or at fault, a refrigerator out of
// range, a board fault, a lockout, the I/O board link down. (Discrepancies are not shown here: the count is
// blind, and pharmacy resolves them on its console.)
import { fill, h, when } from "/common/dom.js";

const LEDGER_ALARMS = {
  "drawer.tamper": (e) =>
    `Tamper: ${e.pocket_id || "a drawer"} was opened without authorisation. Close it and call pharmacy.`,
  "drawer.left_open": (e) => `${e.pocket_id || "A drawer"} has been left open. Close it.`,
  "drawer.fault": (e) =>
    `${e.pocket_id || "A drawer"} is at fault (${e.reason_code || e.kind || "fault"}). Call for service.`,
  "environment.temperature_excursion": () =>
    "Refrigerator excursion: its contents are quarantined for pharmacist review.",
  "device.fault": (e) => `Cabinet board fault: ${e.reason_code || e.kind || "see the pharmacy console"}.`,
  "session.locked_out": (e) => `User ${e.actor_id || ""} is locked out after repeated wrong PINs.`,
};
const FRIDGE_LOW_C = 2;
const FRIDGE_HIGH_C = 8;

export class Alarms {
  constructor(box) {
    this.box = box;
    this.shown = new Map(); // key -> {text, at}
  }

  handle(event) {
    if (event.type === "ledger" && LEDGER_ALARMS[event.event_type]) {
      this.raise(`${event.event_type}:${event.seq}`, LEDGER_ALARMS[event.event_type](event), event.recorded_at);
    } else if (event.type === "device" && event.device === "io_board") {
      if (event.ok) this.clear("link");
      else this.raise("link", `The cabinet's I/O board does not answer (${event.code}). Drawers cannot open.`);
    } else if (event.type === "environment") {
      const t = event.temperature_c;
      if (t < FRIDGE_LOW_C || t > FRIDGE_HIGH_C) {
        this.raise("fridge", `Refrigerator at ${t.toFixed(1)} °C, outside ${FRIDGE_LOW_C}–${FRIDGE_HIGH_C} °C.`);
      } else {
        this.clear("fridge");
      }
      if (event.mains_present === false) this.raise("power", "Mains power lost: the cabinet runs on its UPS.");
      else this.clear("power");
    }
  }

  raise(key, text, at = new Date().toISOString()) {
    this.shown.set(key, { text, at });
    this.render();
  }

  clear(key) {
    if (this.shown.delete(key)) this.render();
  }

  render() {
    fill(
      this.box,
      [...this.shown.entries()].reverse().map(([key, alarm], index, all) =>
        h(
          "div",
          { class: "banner alarm", role: "alert", dataset: { alarm: key.split(":")[0] } },
          all.length > 1 ? h("span", { class: "alarm-of" }, `${index + 1} of ${all.length}`) : null,
          h("span", { class: "alarm-text" }, alarm.text),
          h("span", { class: "alarm-time" }, when(alarm.at)),
          h("button", { type: "button", class: "secondary", onclick: () => this.clear(key) }, "Acknowledge"),
        ),
      ),
    );
  }
}
