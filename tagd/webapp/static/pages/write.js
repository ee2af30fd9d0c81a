// Write: text or ZapScript to the next tag placed on a reader, the tag read back after, and cancel.
import { rpc } from "../rpc.js";
import { act, clear, field, h } from "../ui.js";

export default async function write(main) {
  const text = h("textarea", { id: "write-text", required: true, placeholder: "**launch.system:snes" });
  const reader = h("select", { id: "write-reader" });
  const result = h("div", { id: "write-result", "aria-live": "polite" });
  const go = h("button", { id: "write-go", type: "submit" }, "Write");
  const cancel = h("button", { id: "write-cancel", type: "button", class: "secondary", disabled: true,
    onclick: () => act("Cancelling", () => rpc.call("readers.write.cancel", reader.value ? { readerId: reader.value } : {}),
      { quiet: true }) }, "Cancel");

  const r = await act("Listing readers", () => rpc.call("readers"), { quiet: true });
  const writable = (r ? r.readers : []).filter((x) => x.connected && (x.capabilities || []).includes("write"));
  clear(reader, h("option", { value: "" }, "any reader that writes"),
    writable.map((x) => h("option", { value: x.readerId }, `${x.readerId} (${x.info || x.driver})`)));

  async function submit(ev) {
    ev.preventDefault();
    if (!text.value) return;
    go.disabled = true;
    cancel.disabled = false;
    clear(result, h("p", { class: "warn" }, "Place a tag on the reader…"));
    const params = { text: text.value };
    if (reader.value) params.readerId = reader.value;
    try {
      await rpc.call("readers.write", params);
      // readers.write answers {} (as Zaparoo Core); what the reader read back is the active token on it.
      const t = await rpc.call("tokens");
      const back = t.active.find((x) => !params.readerId || x.readerId === params.readerId) || t.last;
      clear(result, h("p", { class: "ok" }, "Written and verified."),
        back ? h("p", {}, "Read back: ", h("code", { id: "write-readback" }, back.text), " on tag ",
          h("code", {}, back.uid)) : null);
    } catch (e) {
      clear(result, h("p", { class: "bad", role: "alert" }, `Not written: ${e.message}`));
    } finally {
      go.disabled = false;
      cancel.disabled = true;
    }
  }

  clear(main, h("section", {}, h("h2", {}, "Write a tag"),
    h("form", { onsubmit: submit }, field("Text or ZapScript", text), field("Reader", reader),
      h("div", { class: "row" }, go, cancel)), result));
}
