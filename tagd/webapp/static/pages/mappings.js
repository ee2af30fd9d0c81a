// Mappings: the list (file mappings shown read-only), add / edit / delete, and "test a token" against them.
import { rpc } from "../rpc.js";
import { act, clear, field, h } from "../ui.js";

const TYPES = ["uid", "text", "data"];
const MATCHES = ["exact", "partial", "regex"];

export default async function mappings(main) {
  const rows = h("tbody", { id: "mappings-rows" });
  const form = {
    id: null,
    label: h("input", { id: "map-label" }),
    type: h("select", { id: "map-type" }, TYPES.map((t) => h("option", {}, t))),
    match: h("select", { id: "map-match" }, MATCHES.map((m) => h("option", {}, m))),
    pattern: h("input", { id: "map-pattern", required: true }),
    override: h("input", { id: "map-override", required: true }),
  };
  const heading = h("h2", {}, "Add a mapping");
  const save = h("button", { id: "map-save", type: "submit" }, "Add");
  const reset = h("button", { type: "button", class: "secondary", onclick: () => edit(null) }, "New");
  const testUid = h("input", { id: "test-uid", placeholder: "04:16:c6:c2:d7:38:81" });
  const testText = h("input", { id: "test-text", placeholder: "tag text" });
  const testOut = h("p", { id: "test-out", "aria-live": "polite" });

  function edit(m) {
    form.id = m ? m.id : null;
    for (const k of ["label", "type", "match", "pattern", "override"]) form[k].value = m ? m[k] || "" : "";
    if (!m) { form.type.value = "uid"; form.match.value = "exact"; }
    heading.textContent = m ? `Edit mapping ${m.id}` : "Add a mapping";
    save.textContent = m ? "Save" : "Add";
    if (m) form.pattern.focus();
  }

  async function load() {
    const r = await act("Listing mappings", () => rpc.call("mappings", { includeReadOnly: true }), { quiet: true });
    if (!r) return;
    clear(rows, r.mappings.length ? r.mappings.map((m) => h("tr", {},
      h("td", {}, m.label || ""), h("td", {}, `${m.type} ${m.match}`), h("td", { class: "mono" }, m.pattern),
      h("td", { class: "mono" }, m.override), h("td", {}, m.enabled ? "on" : "off"),
      h("td", {}, m.readOnly ? h("span", { class: "muted", title: "edit the file, then reload" }, "file") : [
        h("button", { class: "secondary", onclick: () => edit(m) }, "Edit"), " ",
        h("button", { class: "secondary", onclick: async () => {
          if (await act("Deleting the mapping", () => rpc.call("mappings.delete", { id: m.id })) !== undefined) load();
        } }, "Delete")]))) :
      h("tr", {}, h("td", { colspan: 6, class: "muted" }, "no mappings")));
  }

  async function submit(ev) {
    ev.preventDefault();
    const params = {};
    for (const k of ["label", "type", "match", "pattern", "override"]) params[k] = form[k].value;
    const done = form.id === null ?
      await act("Adding the mapping", () => rpc.call("mappings.new", params)) :
      await act("Saving the mapping", () => rpc.call("mappings.update", { id: form.id, ...params }));
    if (done !== undefined) { edit(null); load(); }
  }

  async function test(ev) {
    ev.preventDefault();
    const r = await act("Testing the token", () => rpc.call("mappings.test",
      { uid: testUid.value, text: testText.value }), { quiet: true });
    if (r) clear(testOut, r.match ? ["Matches ", h("strong", {}, r.match.label || r.match.pattern), ": launches ",
      h("code", {}, r.text)] : ["No mapping matches: launches ", h("code", {}, r.text || "(nothing)")]);
  }

  clear(main,
    h("section", {}, h("h2", {}, "Mappings"), h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "label"),
      h("th", {}, "kind"), h("th", {}, "pattern"), h("th", {}, "launches"), h("th", {}, "on"), h("th", {}, ""))), rows)),
    h("section", {}, heading, h("form", { onsubmit: submit },
      h("div", { class: "row" }, field("Token field", form.type), field("Match", form.match)),
      field("Pattern", form.pattern), field("Launches (ZapScript)", form.override), field("Label", form.label),
      h("div", { class: "row" }, save, reset))),
    h("section", {}, h("h2", {}, "Test a token"), h("form", { onsubmit: test },
      h("div", { class: "row" }, field("UID", testUid), field("Text", testText),
        h("button", { type: "submit", id: "test-go" }, "Test"))), testOut));
  edit(null);
  await load();
}
