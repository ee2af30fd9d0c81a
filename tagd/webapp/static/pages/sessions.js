// Sessions: play sessions (all, pending, failed) with retry, and the services' link state — retroshelf's
// device link shows its code, the verification address and a QR code until the link completes.
import { rpc } from "../rpc.js";
import { act, clear, field, h, time } from "../ui.js";

const FILTERS = ["all", "pending", "failed", "synced"];

export default async function sessions(main) {
  const rows = h("tbody", { id: "sessions-rows" });
  const counts = h("p", { id: "sessions-counts", class: "muted" });
  const filter = h("select", { id: "sessions-filter", onchange: () => load() }, FILTERS.map((f) => h("option", {}, f)));
  const services = h("div", { id: "services" });
  const link = h("div", { id: "link", "aria-live": "polite" });
  const clientId = h("input", { id: "link-client-id", placeholder: "client id from retroshelf" });
  const baseUrl = h("input", { id: "link-base-url", placeholder: "https://retroshelf.example" });

  async function load() {
    const status = filter.value === "all" ? undefined : filter.value;
    const r = await act("Listing sessions", () => rpc.call("sessions", status ? { status } : {}), { quiet: true });
    if (!r) return;
    clear(counts, Object.entries(r.counts || {}).map(([k, v]) => `${k}: ${v}`).join(" · "));
    clear(rows, r.sessions.length ? r.sessions.map((s) => h("tr", {},
      h("td", {}, s.romName || s.romPath), h("td", { class: "opt" }, s.platformHint || ""),
      h("td", {}, `${Math.round((s.duration || 0) / 60)} min`), h("td", { class: "opt" }, time(s.startedAt || "")),
      h("td", { class: s.status === "failed" ? "bad" : s.status === "synced" ? "ok" : "" }, s.status,
        s.error ? h("div", { class: "muted" }, s.error) : null))) :
      h("tr", {}, h("td", { colspan: 5, class: "muted" }, "no sessions")));
  }

  async function retry() {
    const r = await act("Retrying failed sessions", () => rpc.call("sessions.retry", {}), { quiet: true });
    if (r) { load(); }
  }

  function serviceLine(name, s) {
    const state = s.linked ? "linked" : s.configured === false ? "not configured" : s.state || "not linked";
    const unlink = async () => {
      if (await act(`Unlinking ${name}`, () => rpc.call("integrations.unlink", { service: name }), { quiet: true })) {
        loadServices();
      }
    };
    return h("li", {}, h("strong", {}, name), ": ", h("span", { class: s.linked || s.connected ? "ok" : "muted",
      "data-service": name }, state), s.error ? h("span", { class: "bad" }, ` — ${s.error}`) : null,
      s.state && s.state !== "unlinked" ? h("button", { class: "secondary", id: `unlink-${name}`, onclick: unlink },
        "Unlink") : null);
  }

  async function loadServices() {
    const r = await act("Reading the services' state", () => rpc.call("integrations"), { quiet: true });
    if (r) clear(services, h("ul", {}, Object.entries(r).map(([name, s]) => serviceLine(name, s || {}))));
  }

  async function startLink(ev) {
    ev.preventDefault();
    const params = { service: "retroshelf" };
    if (clientId.value) params.clientId = clientId.value;
    if (baseUrl.value) params.baseUrl = baseUrl.value;
    const r = await act("Linking retroshelf", () => rpc.call("integrations.link", params), { quiet: true });
    if (!r) return;
    const qr = h("div", { class: "qr", "aria-hidden": "true" });
    if (r.qrSvg) qr.innerHTML = r.qrSvg;  // made by tagd (segno) from the verification address, not from tag text
    clear(link, h("p", {}, "Open ", h("a", { href: r.verificationUriComplete || r.verificationUri, target: "_blank",
      rel: "noopener", id: "link-url" }, r.verificationUri), " and enter"), h("p", { class: "big", id: "link-code" }, r.userCode),
      qr, h("p", { class: "muted", id: "link-state" }, "waiting for you to approve…"));
  }

  const off = [
    rpc.on("sessions.added", () => load()),
    rpc.on("integrations.changed", (p) => {
      loadServices();
      const st = document.getElementById("link-state");
      if (st && p && p.service === "retroshelf") {
        st.textContent = p.linked ? "linked" : p.error || p.state || "";
        st.className = p.linked ? "ok" : p.error ? "bad" : "muted";
      }
    }),
  ];
  clear(main,
    h("section", {}, h("h2", {}, "Play sessions"), h("div", { class: "row" }, field("Show", filter),
      h("button", { class: "secondary", id: "sessions-retry", onclick: retry }, "Retry failed")), counts,
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "game"), h("th", { class: "opt" }, "platform"),
        h("th", {}, "played"), h("th", { class: "opt" }, "started"), h("th", {}, "sync"))), rows)),
    h("section", {}, h("h2", {}, "Services"), services),
    h("section", {}, h("h2", {}, "Link retroshelf"), h("form", { onsubmit: startLink },
      h("div", { class: "row" }, field("Client id", clientId), field("Server", baseUrl),
        h("button", { type: "submit", id: "link-go" }, "Link"))), link));
  await Promise.all([load(), loadServices()]);
  return () => off.forEach((f) => f());
}
