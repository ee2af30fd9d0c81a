// Decks: pick a catalog (a RomM platform, PlayRen), preview its cards, write them one by one with progress,
// pause and resume, and download the label sheet (PDF).
import { rpc } from "../rpc.js";
import { act, clear, field, h } from "../ui.js";

export default async function decks(main) {
  const source = h("select", { id: "deck-from" }, h("option", { value: "romm" }, "RomM"),
    h("option", { value: "playren" }, "PlayRen"));
  const platform = h("input", { id: "deck-platform", placeholder: "snes" });
  const search = h("input", { id: "deck-search", placeholder: "title contains" });
  const items = h("tbody", { id: "deck-items" });
  const bar = h("progress", { id: "deck-progress", max: 1, value: 0 });
  const line = h("p", { id: "deck-status", "aria-live": "polite" });
  const buttons = {
    write: h("button", { id: "deck-write", onclick: () => run("decks.write", "Writing the deck") }, "Write deck"),
    pause: h("button", { id: "deck-pause", class: "secondary", onclick: () => run("decks.pause", "Pausing") }, "Pause"),
    resume: h("button", { id: "deck-resume", class: "secondary", onclick: () => run("decks.resume", "Resuming") }, "Resume"),
    cancel: h("button", { id: "deck-cancel", class: "secondary", onclick: () => run("decks.cancel", "Cancelling") }, "Cancel"),
    labels: h("button", { id: "deck-labels", class: "secondary", onclick: labels }, "Label sheet (PDF)"),
  };

  const params = () => {
    const p = { from: source.value };
    if (platform.value) p.platform = platform.value;
    if (search.value) p.search = search.value;
    return p;
  };

  async function preview(ev) {
    ev && ev.preventDefault();
    const r = await act("Loading the catalog", () => rpc.call("decks.preview", params()), { quiet: true });
    if (!r) return;
    clear(items, r.items.length ? r.items.map((it) => h("tr", {}, h("td", {}, it.title),
      h("td", { class: "opt" }, it.platform || ""), h("td", { class: "mono opt" }, it.zapscript),
      h("td", { class: it.written ? "ok" : "muted" }, it.written ? "written" : it.warning || "to write"))) :
      h("tr", {}, h("td", { colspan: 4, class: "muted" }, "nothing in this catalog")));
  }

  async function run(method, what) {
    await act(what, () => rpc.call(method, method === "decks.write" ? params() : {}), { quiet: true });
  }

  function progress(p) {
    if (p.state === "idle") return;  // no deck written since tagd started
    bar.max = p.total || 1;
    bar.value = p.done || 0;
    const eta = p.etaSeconds ? ` · about ${Math.ceil(p.etaSeconds)} s left` : "";
    const now = p.state === "waiting" && p.current ? `place a blank tag for ${p.current.title}` :
      p.state === "done" ? "deck written" : p.state === "paused" ? "paused" : p.state || "";
    clear(line, h("strong", {}, `${p.done}/${p.total}`), ` ${now}${eta}`, p.error ? h("span", { class: "bad" }, ` — ${p.error}`) : "");
    if (p.state === "done") preview();
  }

  async function labels() {
    const r = await act("Making the label sheet", () => rpc.call("decks.labels", params()), { quiet: true });
    if (!r) return;
    const bytes = Uint8Array.from(atob(r.pdf), (c) => c.charCodeAt(0));
    const a = h("a", { href: URL.createObjectURL(new Blob([bytes], { type: "application/pdf" })),
      download: r.filename || "tagd-labels.pdf" });
    a.click();
    URL.revokeObjectURL(a.href);
  }

  const off = rpc.on("decks.progress", progress);
  clear(main,
    h("section", {}, h("h2", {}, "Catalog"), h("form", { onsubmit: preview }, h("div", { class: "row" },
      field("From", source), field("Platform", platform), field("Search", search),
      h("button", { type: "submit", id: "deck-preview" }, "Preview")))),
    h("section", {}, h("h2", {}, "Cards"), h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "title"),
      h("th", { class: "opt" }, "platform"), h("th", { class: "opt" }, "ZapScript"), h("th", {}, ""))), items)),
    h("section", {}, h("h2", {}, "Write"), bar, line,
      h("div", { class: "row" }, buttons.write, buttons.pause, buttons.resume, buttons.cancel, buttons.labels)));
  rpc.call("decks.status").then(progress).catch(() => {});
  return off;
}
