// tagd's page: a hash router over six pages, all talking to tagd through rpc.js.
import { rpc } from "./rpc.js";
import { clear, h } from "./ui.js";
import status from "./pages/status.js";
import write from "./pages/write.js";
import mappings from "./pages/mappings.js";
import decks from "./pages/decks.js";
import sessions from "./pages/sessions.js";
import pairing from "./pages/pairing.js";

const PAGES = { status, write, mappings, decks, sessions, pairing };
let leave = null;

async function show() {
  const name = location.hash.slice(1) || "status";
  const page = PAGES[name] || status;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (leave) leave();
  const main = document.getElementById("main");
  clear(main, h("p", { class: "muted" }, "loading…"));
  leave = (await page(main)) || null;
  document.title = `tagd · ${name}`;
}

rpc.onState = (state) => {
  const pill = document.getElementById("conn");
  pill.textContent = state;
  pill.className = `pill ${state === "connected" ? "ok" : "bad"}`;
};
window.addEventListener("hashchange", show);
rpc.connect();
show();
