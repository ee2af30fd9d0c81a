// Status: readers and their health, taps and removals as they happen, what is playing, the inbox.
import { rpc } from "../rpc.js";
import { act, clear, h, time } from "../ui.js";

export default async function status(main) {
  const readers = h("tbody");
  const taps = h("ol", { id: "taps", reversed: true });
  const playing = h("p", { id: "playing", class: "muted" }, "nothing playing");
  const inbox = h("ul", { id: "inbox" });

  async function loadReaders() {
    const r = await act("Listing readers", () => rpc.call("readers"), { quiet: true });
    if (!r) return;
    clear(readers, r.readers.length ? r.readers.map((x) => h("tr", {},
      h("td", { class: "mono" }, x.readerId || x.id),
      h("td", {}, x.driver),
      h("td", { class: "opt" }, x.info || ""),
      h("td", { class: x.connected ? "ok" : "bad" }, x.connected ? "connected" : "not connected",
        x.error ? h("div", { class: "muted" }, x.error) : null),
      h("td", { class: "opt" }, (x.capabilities || []).join(", ")))) :
      h("tr", {}, h("td", { colspan: 5, class: "muted" }, "no readers")));
  }

  function addTap(token, removed = false) {
    const line = removed ? h("li", { class: "muted" }, `${new Date().toLocaleTimeString()} removed`) :
      h("li", { class: "tap" }, `${time(token.scanTime)} `, h("code", {}, token.uid || "—"), " ",
        h("strong", {}, token.text || ""), token.readerId ? h("span", { class: "muted" }, ` on ${token.readerId}`) : "");
    taps.prepend(line);
    while (taps.children.length > 50) taps.lastChild.remove();
  }

  function showMedia(media) {
    clear(playing, media ? [h("strong", {}, media.mediaName || media.mediaPath || "?"),
      media.systemName ? ` (${media.systemName})` : ""] : "nothing playing");
    playing.className = media ? "" : "muted";
  }

  function inboxItem(m) {
    const li = h("li", { "data-id": m.id, class: m.severity >= 2 ? "bad" : m.severity === 1 ? "warn" : "" },
      h("strong", {}, m.title), m.body ? h("div", { class: "muted" }, m.body) : null, " ",
      h("button", { class: "secondary", onclick: async () => {
        if (await act("Dismissing the message", () => rpc.call("inbox.delete", { id: m.id }), { quiet: true }) !== undefined) {
          li.remove();
        }
      } }, "Dismiss"));
    return li;
  }

  async function loadInbox() {
    const r = await act("Reading the inbox", () => rpc.call("inbox"), { quiet: true });
    if (r) clear(inbox, r.messages.length ? r.messages.map(inboxItem) : h("li", { class: "muted" }, "no messages"));
  }

  clear(main,
    h("section", {}, h("h2", {}, "Readers"), h("table", {}, h("thead", {}, h("tr", {},
      h("th", {}, "readerId"), h("th", {}, "driver"), h("th", { class: "opt" }, "info"), h("th", {}, "state"),
      h("th", { class: "opt" }, "can"))), readers)),
    h("section", {}, h("h2", {}, "Now playing"), playing),
    h("section", {}, h("h2", {}, "Taps"), taps),
    h("section", {}, h("h2", {}, "Inbox"), inbox));

  const off = [
    rpc.on("tokens.added", (t) => addTap(t)),
    rpc.on("tokens.removed", () => addTap(null, true)),
    rpc.on("readers.added", loadReaders),
    rpc.on("readers.removed", loadReaders),
    rpc.on("media.started", showMedia),
    rpc.on("media.stopped", () => showMedia(null)),
    rpc.on("inbox.added", (m) => { inbox.querySelector("li.muted")?.remove(); inbox.prepend(inboxItem(m)); }),
  ];
  await Promise.all([loadReaders(), loadInbox(),
    rpc.call("tokens").then((r) => { if (r.last) addTap(r.last); }).catch(() => {}),
    rpc.call("media").then((r) => showMedia((r.active || [])[0] || null)).catch(() => {})]);
  if (!performance.getEntriesByName("tagd-interactive").length) performance.mark("tagd-interactive");
  return () => off.forEach((f) => f());
}
