// A numeric keypad for touchscreens: a labelled input (so a keyboard, a badge wedge or assistive technology work
// too) with large keys below it. The display and the keys have fixed sizes: typing never shifts the layout.
import { h } from "./dom.js";

/**
 * @param {{id: string, label: string, masked?: boolean, maxLength?: number, decimal?: boolean,
 *          submitLabel?: string, onSubmit?: (value: string) => void}} options
 */
export function keypad(options) {
  const { id, label, masked = false, maxLength = 6, decimal = false, submitLabel = "Enter", onSubmit } = options;
  const input = h("input", {
    id,
    class: "keypad-display",
    type: masked ? "password" : "text",
    inputmode: decimal ? "decimal" : "numeric",
    autocomplete: "off",
    maxlength: maxLength,
    pattern: decimal ? "[0-9]*[.]?[0-9]*" : "[0-9]*",
  });
  const press = (key) => {
    if (key === "back") input.value = input.value.slice(0, -1);
    else if (key === "clear") input.value = "";
    else if (input.value.length < maxLength && !(key === "." && input.value.includes("."))) input.value += key;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  };
  input.addEventListener("input", () => {
    const allowed = decimal ? /[^0-9.]/g : /[^0-9]/g;
    if (allowed.test(input.value)) input.value = input.value.replace(allowed, "");
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && onSubmit) {
      event.preventDefault();
      onSubmit(input.value);
    }
  });
  const key = (value, text, aria) =>
    h("button", { type: "button", class: "key", "aria-label": aria || text, onclick: () => press(value) }, text);
  const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9"].map((d) => key(d, d));
  const lastRow = [
    decimal ? key(".", ".", "decimal point") : key("clear", "Clear", "clear"),
    key("0", "0"),
    key("back", "⌫", "delete last digit"),
  ];
  const submit = onSubmit
    ? h(
        "button",
        { type: "button", class: "key key-submit primary", onclick: () => onSubmit(input.value) },
        submitLabel,
      )
    : null;
  const element = h(
    "div",
    { class: "keypad" },
    h("label", { for: id, class: "keypad-label" }, label),
    input,
    h("div", { class: "keypad-keys", role: "group", "aria-label": `${label} keypad` }, keys, lastRow),
    submit,
  );
  return {
    element,
    input,
    submit,
    get value() {
      return input.value;
    },
    clear() {
      input.value = "";
    },
    focus() {
      input.focus();
    },
  };
}
