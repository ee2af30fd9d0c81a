// Pairing: a PIN for the Zaparoo App (shown with its countdown), and the paired clients, each removable.
import { rpc } from "../rpc.js";
import { act, clear, h } from "../ui.js";

export default async function pairing(main) {
  const pin = h("div", { id: "pair-pin", "aria-live": "polite" });
  const list = h("tbody", { id: "clients" });
  let timer = null;

  function countdown(expiresAt) {
    clearInterval(timer);
    const left = h("p", { class: "muted" });
    const tick = () => {
      const s = Math.max(0, Math.round(expiresAt - Date.now() / 1000));
      left.textContent = s > 0 ? `expires in ${s} s` : "expired: start again";
      if (s === 0) clearInterval(timer);
    };
    tick();
    timer = setInterval(tick, 1000);
    return left;
  }

  async function start() {
    const r = await act("Starting pairing", () => rpc.call("clients.pair.start", {}), { quiet: true });
    if (!r) return;
    clear(pin, h("p", {}, "In the Zaparoo App, add this device and enter:"), h("p", { class: "big", id: "pin" }, r.pin),
      countdown(r.expiresAt), h("button", { class: "secondary", onclick: cancel }, "Cancel"));
  }

  async function cancel() {
    clearInterval(timer);
    if (await act("Cancelling pairing", () => rpc.call("clients.pair.cancel", {}), { quiet: true }) !== undefined) clear(pin);
  }

  async function load() {
    const r = await act("Listing paired clients", () => rpc.call("clients"), { quiet: true });
    if (!r) return;
    clear(list, r.clients.length ? r.clients.map((c) => h("tr", {},
      h("td", {}, c.clientName || "?"), h("td", {}, c.role || ""),
      h("td", { class: "opt" }, c.createdAt ? new Date(c.createdAt * 1000).toLocaleString() : ""),
      h("td", {}, h("button", { class: "secondary", onclick: async () => {
        if (await act(`Removing ${c.clientName}`, () => rpc.call("clients.delete", { clientId: c.clientId })) !== undefined) load();
      } }, "Remove")))) : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "no paired clients")));
  }

  clear(main,
    h("section", {}, h("h2", {}, "Pair the Zaparoo App"),
      h("button", { id: "pair-start", onclick: start }, "Show a PIN"), pin),
    h("section", {}, h("h2", {}, "Paired clients"), h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "name"),
      h("th", {}, "role"), h("th", { class: "opt" }, "since"), h("th", {}, ""))), list)));
  const off = rpc.on("clients.paired", load);
  await load();
  return () => { clearInterval(timer); off(); };
}
