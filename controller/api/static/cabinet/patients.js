// The unit's patients (an active encounter in this cabinet's care area): one large button each, with the room,
// the allergies and how many orders are due.
import { h } from "/common/dom.js";
import { messageBox, showProblem } from "/common/messages.js";

export async function showPatients(ctx) {
  const message = messageBox("patients-message");
  const list = h("div", { class: "patient-list", role: "list" });
  ctx.show(
    h(
      "section",
      { class: "patients", "aria-labelledby": "patients-title" },
      h("h1", { id: "patients-title" }, "Patients"),
      list,
      message,
    ),
  );
  let patients;
  try {
    patients = await ctx.api.get("/api/v1/patients");
  } catch (problem) {
    showProblem(message, problem, "Cannot list patients");
    return;
  }
  if (patients.length === 0) list.append(h("p", { class: "hint" }, "No patients in this cabinet's care area."));
  for (const p of patients) {
    list.append(
      h(
        "button",
        {
          type: "button",
          class: "patient-card",
          role: "listitem",
          dataset: { patient: p.patient_id },
          onclick: () => ctx.patient(p.patient_id),
        },
        h("span", { class: "room" }, `${p.room}${p.bed}`),
        h("span", { class: "name" }, `${p.family_name}, ${p.given_name}`),
        h("span", { class: "mrn" }, `${p.patient_id} · born ${p.birth_date}`),
        h(
          "span",
          { class: "allergies" },
          p.allergies.length
            ? p.allergies.map((a) => h("span", { class: "chip stop" }, `Allergy: ${a}`))
            : h("span", { class: "chip" }, "No known allergies"),
        ),
        h("span", { class: "due" }, `${p.due_orders} due`),
      ),
    );
  }
}
