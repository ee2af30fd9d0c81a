// Small DOM helpers: h() builds elements (text is always text, never HTML: tag text is untrusted),
// and every action that can fail goes through act(), which shows tagd's error where the user looks.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Show a message in the page's live region (errors stay until dismissed). */
export function notice(text, kind = "info") {
  const box = document.getElementById("notices");
  const item = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", {}, text),
    h("button", { class: "link", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"));
  box.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 4000);
  return item;
}

/** Run an action; its error (tagd's message) is shown, never swallowed. Returns the result or undefined. */
export async function act(what, fn, { quiet = false } = {}) {
  try {
    const result = await fn();
    if (!quiet) notice(`${what}: done`);
    return result;
  } catch (e) {
    notice(`${what} failed: ${e.message}`, "error");
    return undefined;
  }
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleTimeString();
}

export function field(label, input) {
  const id = input.id || (input.id = "f" + Math.random().toString(36).slice(2, 8));
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}
