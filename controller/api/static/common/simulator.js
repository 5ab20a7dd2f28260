// The simulated cabinet's physical world, for demos in a browser: what a person's hands would do (open a drawer,
// lift a lid, show a package to the scanner), sent through POST /api/v1/devices/simulator/actions. The cabinet
// refuses these on real hardware; the pages show the panel only when /api/v1/devices says a simulator is there.

/** @param {import("./api.js").Api} api */
export async function simulatorAvailable(api) {
  try {
    const devices = await api.request("GET", "/api/v1/devices", undefined, { activity: false });
    return Boolean(devices.simulator_control);
  } catch {
    return false;
  }
}

export function act(api, device, action, args = {}) {
  return api.post("/api/v1/devices/simulator/actions", { device, action, args });
}

/** "D2-P02" -> {drawer: 2, pocket: 2}: the demo layouts name pockets by drawer and position. */
export function drawerAndPocket(pocketId) {
  const match = /^D(\d+)-P(\d+)$/.exec(pocketId || "");
  return match ? { drawer: Number(match[1]), pocket: Number(match[2]) } : null;
}

/** GTIN-14 of a 10-digit NDC: indicator 0, "03", the NDC, a mod-10 check digit (weights 3, 1 from the right). */
export function gtin14(ndc) {
  const digits = String(ndc).replace(/-/g, "");
  if (!/^\d{10}$/.test(digits)) return null;
  const body = `003${digits}`;
  let sum = 0;
  for (let i = 0; i < body.length; i += 1) sum += Number(body[body.length - 1 - i]) * (i % 2 === 0 ? 3 : 1);
  return body + String((10 - (sum % 10)) % 10);
}

/** The GS1 DataMatrix payload of one package: (01) GTIN, (17) expiry YYMMDD, (10) lot, GS, (21) serial. */
export function gs1Package(ndc, { lot, expiry, serial }) {
  const gtin = gtin14(ndc);
  if (!gtin) return null;
  const yymmdd = `${String(expiry.getFullYear()).slice(2)}${String(expiry.getMonth() + 1).padStart(2, "0")}${String(expiry.getDate()).padStart(2, "0")}`;
  return `01${gtin}17${yymmdd}10${lot}\u001d21${serial}`;
}
