// Returning an unused dose: to the one-way return bin by default, or a sealed package to its own pocket where the
// policy allows. A controlled return the policy lists waits for a witness; one that goes back to a pocket waits
// for the nurse to say it is back.
import { fill, h } from "/common/dom.js";
import { messageBox, showDone, showInfo, showProblem } from "/common/messages.js";
import { askWitness } from "/common/witness.js";
import { patientStrip } from "./patient.js";

export function showReturn(ctx, target) {
  const message = messageBox("return-message");
  let quantity = 1;
  const shown = h("output", { id: "return-quantity", class: "quantity" }, "1");
  const set = (n) => {
    quantity = Math.max(1, Math.min(20, n));
    shown.textContent = String(quantity);
  };
  const destination = h(
    "select",
    { id: "return-destination" },
    h("option", { value: "return_bin", selected: true }, "Return bin (one-way)"),
    h("option", { value: "original_pocket" }, "Its own pocket (sealed, non-controlled only)"),
  );
  const sealed = h("input", { id: "return-sealed", type: "checkbox" });
  const send = h("button", { type: "button", id: "send-return", class: "primary big" }, "Return");
  const after = h("div", { class: "actions" });
  const back = () =>
    fill(
      after,
      h(
        "button",
        { type: "button", class: "big", id: "back-patient", onclick: () => ctx.patient(target.patient.patient_id) },
        "Back to the patient",
      ),
    );

  const follow = async (answer) => {
    let state = answer.state;
    const returnId = answer.return_id || answer.ret?.return_id;
    if (state === "awaiting_witness") {
      const outcome = await askWitness(ctx.api, {
        title: "Witness the return",
        what: `${ctx.session.display_name} returns ${quantity} × ${target.itemName}.`,
      });
      if (!outcome.signed) {
        showInfo(
          message,
          "Witness cancelled: the return is kept and waits for a witness; the dose stays with you until then.",
        );
        ctx.refreshPending(); // it is on the pending list now
        return;
      }
      state = outcome.signed.state;
    }
    if (state === "ready") {
      showInfo(message, "Put the dose back in the open pocket, then press Done.");
      fill(
        after,
        h(
          "button",
          {
            type: "button",
            class: "primary big",
            id: "return-done",
            onclick: async () => {
              try {
                await ctx.api.post(`/api/v1/returns/${encodeURIComponent(returnId)}/confirm`);
                showDone(message, `Returned ${quantity} × ${target.itemName}.`);
                back();
              } catch (problem) {
                showProblem(message, problem, "Not confirmed");
              }
            },
          },
          "Done",
        ),
      );
      return;
    }
    showDone(message, `Return recorded: put ${quantity} × ${target.itemName} in the return bin.`);
    back();
  };

  send.addEventListener("click", async () => {
    send.disabled = true;
    try {
      await follow(
        await ctx.api.post("/api/v1/returns", {
          quantity,
          pull_id: target.pullId,
          destination: destination.value,
          sealed: sealed.checked,
        }),
      );
      send.classList.add("hidden");
    } catch (problem) {
      showProblem(message, problem, "Return refused");
    } finally {
      send.disabled = false;
    }
  });

  ctx.show(
    h(
      "section",
      { class: "return", "aria-labelledby": "return-title" },
      patientStrip(target.patient),
      h(
        "div",
        { class: "return-body" },
        h("h1", { id: "return-title" }, `Return: ${target.itemName}`),
        h("span", { class: "label" }, "Quantity"),
        h(
          "div",
          { class: "stepper", role: "group", "aria-label": "Quantity returned" },
          h("button", { type: "button", "aria-label": "one fewer", onclick: () => set(quantity - 1) }, "−"),
          shown,
          h("button", { type: "button", "aria-label": "one more", onclick: () => set(quantity + 1) }, "+"),
        ),
        h("label", { for: "return-destination" }, "Where"),
        destination,
        h("label", { class: "check" }, sealed, " The package is sealed"),
        message,
        send,
        after,
      ),
    ),
  );
}
