// The page's one connection to tagd: JSON-RPC 2.0 over the same WebSocket every other client uses.
// call(method, params) → Promise of the result (rejects with the error tagd returned, message intact);
// on(method, fn) → notifications. Reconnects with backoff (0.5 s doubling to 10 s); state changes go to onState.

const key = new URLSearchParams(location.search).get("key") || sessionStorage.getItem("tagd-key") || "";
if (key) sessionStorage.setItem("tagd-key", key);

export class RpcError extends Error {
  constructor(error) {
    super(error.message || "error " + error.code);
    this.code = error.code;
    this.data = error.data;
  }
}

export class Rpc {
  constructor() {
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Map();
    this.onState = () => {};
    this.delay = 500;
    this.ws = null;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/api/v0.1` + (key ? `?key=${encodeURIComponent(key)}` : "");
  }

  connect() {
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.ready = new Promise((resolve) => { this._resolveReady = resolve; });
    ws.onopen = () => { this.delay = 500; this.onState("connected"); this._resolveReady(); };
    ws.onmessage = (ev) => this._receive(ev.data);
    ws.onclose = () => {
      for (const { reject } of this.pending.values()) reject(new Error("connection to tagd lost"));
      this.pending.clear();
      this.onState("disconnected");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
    return this.ready;
  }

  _receive(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (msg.id !== undefined && msg.id !== null && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) reject(new RpcError(msg.error)); else resolve(msg.result);
    } else if (msg.method) {
      for (const fn of this.listeners.get(msg.method) || []) {
        try { fn(msg.params); } catch (e) { console.error(e); }
      }
    }
  }

  async call(method, params) {
    await this.ready;
    const id = this.nextId++;
    const body = { jsonrpc: "2.0", id, method };
    if (params !== undefined) body.params = params;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify(body));
    });
  }

  on(method, fn) {
    if (!this.listeners.has(method)) this.listeners.set(method, []);
    this.listeners.get(method).push(fn);
    return () => this.listeners.set(method, this.listeners.get(method).filter((f) => f !== fn));
  }
}

export const rpc = new Rpc();
