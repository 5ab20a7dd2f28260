// Inventory and par: what needs doing at a glance (tiles), then every pocket with its stock against min, par and
// max, its next expiry and any quarantined lot. A row needing stock offers the restock.
import { fill, h } from "/common/dom.js";
import { messageBox, showProblem } from "/common/messages.js";

const NS = "http://www.w3.org/2000/svg";

/** Stock against its levels: the bar is the quantity (red at or below min, amber below par), ticks mark min and par. */
function levelBar(p) {
  const width = 100;
  const scale = Math.max(p.max, p.quantity, 1);
  const x = (v) => (v / scale) * width;
  const tone = p.quantity <= p.min ? "low" : p.quantity < p.par ? "under" : "ok";
  const node = (tag, attrs) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    return n;
  };
  const bar = node("svg", {
    viewBox: `0 0 ${width} 20`,
    width,
    height: 20,
    class: "level",
    role: "img",
    "aria-label": `${p.quantity} on hand; min ${p.min}, par ${p.par}, max ${p.max}`,
  });
  bar.append(
    node("rect", { x: 0, y: 4, width, height: 12, class: "level-track" }),
    node("rect", { x: 0, y: 4, width: x(p.quantity), height: 12, class: `level-fill ${tone}` }),
    node("line", { x1: x(p.min), x2: x(p.min), y1: 0, y2: 20, class: "level-min" }),
    node("line", { x1: x(p.par), x2: x(p.par), y1: 0, y2: 20, class: "level-par" }),
  );
  return bar;
}

function tile(label, value, tone, onclick) {
  return h(
    "button",
    { type: "button", class: `tile ${tone}`, onclick, disabled: !onclick, dataset: { tile: label } },
    h("span", { class: "tile-value" }, value),
    h("span", { class: "tile-label" }, label),
  );
}

export async function showDashboard(ctx) {
  const message = messageBox("inventory-message");
  const tiles = h("div", { class: "tiles" });
  const table = h("div", { class: "table-wrap" });
  const onlyAttention = h("input", { type: "checkbox", id: "only-attention" });
  ctx.show(
    h(
      "section",
      { "aria-labelledby": "inventory-title" },
      h(
        "div",
        { class: "heading-row" },
        h("h1", { id: "inventory-title" }, "Inventory and par levels"),
        h(
          "button",
          { type: "button", class: "small", id: "inventory-refresh", onclick: () => showDashboard(ctx) },
          "Refresh",
        ),
      ),
      tiles,
      h("label", { class: "check" }, onlyAttention, " Only pockets needing attention"),
      message,
      table,
    ),
  );
  const get = (path, allowed) => (allowed ? ctx.api.get(path) : Promise.reject(new Error("not for this user")));
  const [pockets, pick, expiring, quarantine, discrepancies, overrides, temperature] = await Promise.allSettled([
    ctx.api.get("/api/v1/inventory/pockets"),
    get("/api/v1/restock/pick-list", ctx.can("restock") || ctx.can("review")),
    ctx.api.get("/api/v1/inventory/expiring?days=30"),
    get("/api/v1/quarantine", ctx.can("restock") || ctx.can("review")),
    get("/api/v1/discrepancies", ctx.can("resolve_discrepancy") || ctx.can("review")),
    get("/api/v1/override-reviews", ctx.can("review")),
    ctx.api.request("GET", "/api/v1/devices/temperature", undefined, { activity: false }),
  ]);
  const count = (result, pick) => (result.status === "fulfilled" ? pick(result.value) : "—");
  const nonZero = (n) => (typeof n === "number" && n > 0 ? "attention" : "");
  const low = count(pick, (v) => v.lines.length);
  const soon = count(expiring, (v) => v.length);
  const held = count(quarantine, (v) => v.quarantines.length);
  const open = count(discrepancies, (v) => v.discrepancies.filter((d) => d.state !== "reviewed").length);
  const queued = count(overrides, (v) => v.reviews.length);
  const fridge = temperature.status === "fulfilled" ? temperature.value : null;
  const fridgeBad =
    fridge && fridge.current_c !== null && (fridge.current_c < fridge.band_c[0] || fridge.current_c > fridge.band_c[1]);
  fill(
    tiles,
    tile("At or below minimum", low, nonZero(low), ctx.can("restock") ? () => ctx.open("restock") : null),
    tile("Expiring within 30 days", soon, nonZero(soon), () => ctx.open("stock")),
    tile("Quarantined lots", held, nonZero(held), () => ctx.open("stock")),
    tile(
      "Open discrepancies",
      open,
      nonZero(open),
      ctx.can("resolve_discrepancy") || ctx.can("review") ? () => ctx.open("discrepancies") : null,
    ),
    tile("Overrides to review", queued, nonZero(queued), ctx.can("review") ? () => ctx.open("overrides") : null),
    tile(
      "Refrigerator",
      fridge && fridge.current_c !== null ? `${fridge.current_c.toFixed(1)} °C` : "—",
      fridgeBad ? "alarm" : "",
      () => ctx.open("devices"),
    ),
  );
  if (pockets.status === "rejected") {
    showProblem(message, pockets.reason, "Cannot read the inventory");
    return;
  }
  const expiringLots = new Set(
    expiring.status === "fulfilled" ? expiring.value.map((l) => `${l.pocket_id}|${l.lot}`) : [],
  );
  const render = () => {
    const rows = pockets.value
      .filter((p) => p.item_id)
      .map((p) => {
        const status = [];
        if (p.quantity <= p.min) status.push(h("span", { class: "chip stop" }, "At/below min"));
        else if (p.quantity < p.par) status.push(h("span", { class: "chip warn" }, "Below par"));
        if (p.lots.some((l) => expiringLots.has(`${p.pocket_id}|${l.lot}`)))
          status.push(h("span", { class: "chip warn" }, "Expiring"));
        if (p.lots.some((l) => l.quarantined)) status.push(h("span", { class: "chip stop" }, "Quarantined lot"));
        return { p, status };
      })
      .filter(({ status }) => !onlyAttention.checked || status.length > 0);
    fill(
      table,
      h(
        "table",
        { id: "inventory-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            [
              "Pocket",
              "Item",
              "Sched.",
              "On hand",
              "Level (min | par)",
              "Min / par / max",
              "Next expiry",
              "Status",
              "",
            ].map((t) => h("th", { scope: "col", class: t === "On hand" ? "num" : "" }, t)),
          ),
        ),
        h(
          "tbody",
          {},
          rows.map(({ p, status }) =>
            h(
              "tr",
              { dataset: { pocket: p.pocket_id } },
              h("th", { scope: "row" }, p.pocket_id),
              h("td", { class: "wrap" }, p.item, h("div", { class: "hint" }, p.drawer_kind.replace("_", " "))),
              h("td", {}, p.dea_schedule ? `C${p.dea_schedule}` : ""),
              h("td", { class: "num qty" }, p.quantity),
              h("td", {}, levelBar(p)),
              h("td", {}, `${p.min} / ${p.par} / ${p.max}`),
              h("td", {}, p.next_expiry || ""),
              h("td", {}, status),
              h(
                "td",
                {},
                ctx.can("restock") && p.drawer_kind !== "return_bin"
                  ? h(
                      "button",
                      { type: "button", class: "small", onclick: () => ctx.open("restock", { pocketId: p.pocket_id }) },
                      "Restock",
                    )
                  : null,
              ),
            ),
          ),
        ),
      ),
    );
  };
  onlyAttention.addEventListener("change", render);
  render();
}
