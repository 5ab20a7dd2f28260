// Devices and temperature: who each device says it is (and whether it is a simulator, as it reports over the
// wire), the I/O board's link and faults, compartments not locked, what needs service, and one temperature chart
// per refrigerator. Refreshed by the event stream; these reads do not count as activity, so an idle console
// still logs off.
import { fill, h, when } from "/common/dom.js";
import { messageBox, showProblem } from "/common/messages.js";
import { temperatureChart } from "./chart.js";

const quiet = (ctx, path) => ctx.api.request("GET", path, undefined, { activity: false });

export async function showDevices(ctx) {
  const message = messageBox("devices-message");
  const charts = h("div", { class: "charts", id: "charts" });
  const status = h("div", { class: "device-status" });
  ctx.show(
    h(
      "section",
      { "aria-labelledby": "devices-title" },
      h("h1", { id: "devices-title" }, "Devices and temperature"),
      message,
      charts,
      status,
    ),
  );
  let timer = null;
  const later = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      load();
    }, 1500);
  };
  const stop = ctx.onEvent((event) => {
    if (
      event.type === "environment" ||
      event.type === "device" ||
      (event.type === "ledger" && event.category === "alarm")
    )
      later();
  });
  ctx.leaving = () => {
    stop();
    clearTimeout(timer);
  };

  async function load() {
    const [devices, faults, temperature] = await Promise.allSettled([
      quiet(ctx, "/api/v1/devices"),
      quiet(ctx, "/api/v1/devices/faults"),
      quiet(ctx, "/api/v1/devices/temperature"),
    ]);
    if (temperature.status === "fulfilled") {
      const data = temperature.value;
      const fridges = data.refrigerators.length ? data.refrigerators : ["refrigerator"];
      fill(
        charts,
        fridges.map((drawer) =>
          h(
            "figure",
            { class: "chart" },
            temperatureChart({ id: `chart-${drawer}`, title: `Refrigerator ${drawer}`, data }),
            h(
              "figcaption",
              { class: "hint" },
              `Sensor: the I/O board's refrigerator probe; readings since ${data.readings.length ? when(data.readings[0].at) : "now"}. `,
              `Green band: safe ${data.band_c[0]}–${data.band_c[1]} °C. Red: outside it. Red bar and dashed line: an excursion the cabinet recorded, how long it lasted (its lots were quarantined).`,
            ),
          ),
        ),
      );
    } else {
      showProblem(message, temperature.reason, "No temperature data");
    }
    if (devices.status === "rejected") {
      showProblem(message, devices.reason, "Cannot read the devices");
      return;
    }
    const d = devices.value;
    const board = d.io_board;
    const notLocked = Object.entries(d.compartments).filter(([, state]) => state !== "locked");
    const f = faults.status === "fulfilled" ? faults.value : null;
    fill(
      status,
      h(
        "h2",
        {},
        `Cabinet ${d.cabinet_id}`,
        d.is_simulator ? h("span", { class: "chip warn" }, "simulated hardware") : null,
        d.critical_override_mode ? h("span", { class: "chip stop" }, "critical-override mode") : null,
      ),
      h(
        "table",
        { id: "device-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Device", "Link", "Identity", "Simulator", "Address"].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        h(
          "tbody",
          {},
          d.devices.map((dev) =>
            h(
              "tr",
              { dataset: { device: dev.device } },
              h("th", { scope: "row" }, dev.device.replace("_", " ")),
              h(
                "td",
                {},
                dev.connected
                  ? h("span", { class: "chip go" }, "connected")
                  : h("span", { class: "chip stop" }, dev.error || "not connected"),
              ),
              h(
                "td",
                { class: "wrap" },
                dev.identity
                  ? Object.entries(dev.identity)
                      .filter(([k]) => k !== "is_simulator")
                      .map(([k, v]) => `${k} ${v}`)
                      .join(" · ")
                  : "",
              ),
              h("td", { class: "wrap" }, dev.is_simulator ? "yes (reported by the device)" : "no"),
              h("td", { class: "hint" }, dev.url || ""),
            ),
          ),
        ),
      ),
      h("h2", {}, "I/O board"),
      h(
        "ul",
        { class: "facts" },
        h(
          "li",
          {},
          "Link: ",
          board.link === "ok"
            ? h("span", { class: "chip go" }, "ok")
            : h("span", { class: "chip stop" }, `${board.link}${board.code ? ` (${board.code})` : ""}`),
        ),
        h("li", {}, `Reads ${board.reads}, failed ${board.failures}`),
        board.supply_voltage_v !== undefined ? h("li", {}, `Supply ${board.supply_voltage_v} V`) : null,
        board.environment
          ? h(
              "li",
              {},
              `Humidity ${board.environment.humidity_pct} %, fridge door ${board.environment.fridge_door_open ? "OPEN" : "closed"}, mains ${board.environment.mains_present ? "on" : "OFF (UPS)"}`,
            )
          : null,
        board.door_open ? h("li", { class: "bad" }, "Cabinet door open") : null,
        board.tamper ? h("li", { class: "bad" }, "Tamper switch active") : null,
        (board.faults || []).length ? h("li", { class: "bad" }, `Faults: ${board.faults.join(", ")}`) : null,
      ),
      h("h2", {}, "Compartments"),
      notLocked.length === 0
        ? h("p", { class: "hint" }, "Every compartment is locked.")
        : h(
            "ul",
            { class: "facts" },
            notLocked.map(([id, state]) =>
              h("li", { class: state === "jammed" || state === "fault" ? "bad" : "" }, `${id}: ${state}`),
            ),
          ),
      f && (f.unaccounted.length || f.compartments.length || f.devices_not_answering.length)
        ? h(
            "div",
            { class: "message problem", role: "alert" },
            f.unaccounted.length ? `Opened without authorisation, to account for: ${f.unaccounted.join(", ")}. ` : "",
            f.compartments.length
              ? `At fault: ${f.compartments.map((c) => `${c.compartment_id} (${c.state})`).join(", ")}. `
              : "",
            f.devices_not_answering.length ? `Not answering: ${f.devices_not_answering.join(", ")}.` : "",
          )
        : null,
    );
  }

  await load();
}
