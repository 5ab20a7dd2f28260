// Messages next to the action that caused them: a refusal shows the server's own explanation and its stable code
// (what to quote to pharmacy or IT); information and success are plain sentences.
import { fill, h } from "./dom.js";

/** Show ``problem`` (a Problem or any Error) in ``box``. */
export function showProblem(box, problem, lead = "") {
  const code = problem.code || "error";
  fill(
    box,
    h("strong", { class: "problem-detail" }, lead ? `${lead}: ` : "", problem.detail || problem.message),
    h("span", { class: "problem-code" }, ` (${code})`),
  );
  box.className = "message problem";
  box.setAttribute("role", "alert");
  box.dataset.code = code;
  delete box.dataset.refusedIn;
}

export function showInfo(box, ...text) {
  fill(box, ...text);
  box.className = "message info";
  box.setAttribute("role", "status");
  delete box.dataset.code;
  delete box.dataset.refusedIn;
}

export function showDone(box, ...text) {
  fill(box, ...text);
  box.className = "message done";
  box.setAttribute("role", "status");
  delete box.dataset.code;
  delete box.dataset.refusedIn;
}

export function clearMessage(box) {
  fill(box);
  box.className = "message";
  delete box.dataset.code;
  delete box.dataset.refusedIn;
}

/** A message box: reserved height, so text appearing never moves the controls around it. */
export function messageBox(id) {
  return h("div", { id, class: "message", "aria-live": "polite" });
}
