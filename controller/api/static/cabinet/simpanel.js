// On a simulated cabinet only: buttons that stand in for the nurse's hands (open the drawer, lift the lid, close
// them), so a pull can be done from a browser. They act on the simulator, never on the cabinet's records: the
// cabinet learns of the movement from its sensors, as it would on real hardware.
import { fill, h } from "/common/dom.js";
import { messageBox, showProblem, clearMessage } from "/common/messages.js";
import { act, drawerAndPocket } from "/common/simulator.js";

export class SimulatorPanel {
  constructor(api, box) {
    this.api = api;
    this.box = box;
    this.lidded = null; // compartment ids with a lid of their own
    this.current = null;
  }

  async target(pocketId) {
    const where = drawerAndPocket(pocketId);
    if (pocketId === this.current) return;
    this.current = pocketId;
    if (!where) {
      this.box.classList.add("hidden");
      return;
    }
    if (this.lidded === null) {
      try {
        const devices = await this.api.request("GET", "/api/v1/devices", undefined, { activity: false });
        this.lidded = new Set(Object.keys(devices.compartments).filter((id) => id.includes("-")));
      } catch {
        this.lidded = new Set();
      }
    }
    const message = messageBox("sim-message");
    const button = (text, action, args) =>
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          dataset: { sim: action },
          onclick: async () => {
            try {
              await act(this.api, "io_board", action, args);
              clearMessage(message);
            } catch (problem) {
              showProblem(message, problem);
            }
          },
        },
        text,
      );
    const drawer = { drawer: where.drawer };
    const lid = { drawer: where.drawer, pocket: where.pocket };
    const hasLid = this.lidded.has(pocketId);
    fill(
      this.box,
      h("span", { class: "sim-title" }, "Simulator (your hands):"),
      button(`Open drawer ${where.drawer}`, "open_drawer", drawer),
      hasLid ? button(`Lift lid ${pocketId}`, "lift_lid", lid) : null,
      hasLid ? button(`Close lid ${pocketId}`, "close_lid", lid) : null,
      button(`Close drawer ${where.drawer}`, "close_drawer", drawer),
      message,
    );
    this.box.classList.remove("hidden");
  }
}
