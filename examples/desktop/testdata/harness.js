// Runs app.js against a tiny fake DOM, a fake memconnect API and a virtual
// clock, and checks the pane's behaviour. Used by desktop_test.go when node is
// on PATH:  node testdata/harness.js app.js index.html
"use strict";

const fs = require("fs");
const vm = require("vm");
const assert = require("assert/strict");

const [appPath, htmlPath] = process.argv.slice(2);
const appSrc = fs.readFileSync(appPath, "utf8");
const html = fs.readFileSync(htmlPath, "utf8");

// ---- fake DOM ----------------------------------------------------------

class El extends EventTarget {
  constructor(doc, tag, id) {
    super();
    this.ownerDocument = doc;
    this.tagName = tag.toUpperCase();
    this.id = id || "";
    this.attrs = new Map();
    this.text = "";
    this.options = [];
    this.hidden = false;
    this.selected = "";
  }
  get textContent() {
    return this.text;
  }
  set textContent(v) {
    this.text = String(v);
  }
  set innerHTML(_) {
    throw new Error("innerHTML must not be used");
  }
  get value() {
    return this.tagName === "SELECT" ? this.selected : this.attrs.get("value") || "";
  }
  set value(v) {
    if (this.tagName === "SELECT") {
      this.selected = this.options.some((o) => o.value === String(v)) ? String(v) : "";
    } else {
      this.attrs.set("value", String(v));
    }
  }
  setAttribute(k, v) {
    this.attrs.set(k, String(v));
  }
  getAttribute(k) {
    return this.attrs.has(k) ? this.attrs.get(k) : null;
  }
  hasAttribute(k) {
    return this.attrs.has(k);
  }
  removeAttribute(k) {
    this.attrs.delete(k);
  }
  appendChild(c) {
    this.options.push(c);
    return c;
  }
  focus() {
    this.ownerDocument.activeElement = this;
  }
  click() {
    assert.ok(!this.hidden, `clicked hidden #${this.id}`);
    this.dispatchEvent(new Event("click"));
  }
}

class Doc extends EventTarget {
  constructor() {
    super();
    this.byId = new Map();
    this.activeElement = null;
    const tagRe = /<(\w+)([^>]*)>/g;
    let m;
    while ((m = tagRe.exec(html))) {
      const [, tag, attrs] = m;
      const attr = (name) => {
        const a = new RegExp(`\\s${name}="([^"]*)"`).exec(attrs);
        return a ? a[1] : null;
      };
      if (tag === "body") {
        this.body = new El(this, "body");
        for (const a of attrs.matchAll(/\s(data-[\w-]+)="([^"]*)"/g)) this.body.setAttribute(a[1], a[2]);
        this.activeElement = this.body;
        continue;
      }
      const id = attr("id");
      if (!id) continue;
      const el = new El(this, tag, id);
      el.hidden = /\shidden(\s|$|=)/.test(attrs);
      this.byId.set(id, el);
      if (tag === "select") {
        const opt = new El(this, "option");
        opt.value = "";
        opt.textContent = "Built-in (no provider)";
        el.options.push(opt);
      }
    }
  }
  getElementById(id) {
    return this.byId.get(id) || null;
  }
  createElement(tag) {
    return new El(this, tag);
  }
}

// ---- fake API ----------------------------------------------------------

function makeServer(initial) {
  const srv = {
    requests: [],
    providers: [{ name: "honcho", display_name: "Honcho", auth_methods: ["browser", "device"] }],
    status: Object.assign(
      { provider: "honcho", profile: "default", supported: true, connected: false, auth: null, reauth_required: false, token: null, flow: null },
      initial,
    ),
    flowSeq: 0,
    authorizeURL: "https://auth.example.test/authorize?client_id=x&state=s",
    override: null, // (method, path, body) => {status, body} | undefined
    down: false,
    streaming: false, // serve GET .../events as a stream the test pushes to
    streams: [], // open streams: {push(text), end()}
  };
  srv.pendingFlow = () => ({
    id: `f${++srv.flowSeq}`,
    state: "pending",
    method: "browser",
    detail: "Waiting for browser consent",
    authorize_url: srv.authorizeURL,
    redirect_uri: "http://127.0.0.1:8765/callback",
    user_code: null,
    verification_uri: null,
    expires_at: "2026-11-28T21:40:00Z",
  });
  srv.grant = () => {
    srv.status.connected = true;
    srv.status.auth = "oauth";
    srv.status.reauth_required = false;
    srv.status.token = { client_id: "hermes-agent", scope: "write", expires_at: `2026-11-28T23:00:${String(srv.flowSeq).padStart(2, "0")}Z`, expires_in: 3600 };
    if (srv.status.flow) srv.status.flow = Object.assign({}, srv.status.flow, { state: "connected", detail: "Connected" });
  };
  srv.handle = (method, path, body) => {
    const ov = srv.override && srv.override(method, path, body);
    if (ov) return ov;
    const base = "/api/memory";
    if (method === "GET" && path === `${base}/providers`) return { status: 200, body: { providers: srv.providers } };
    const m = /^\/api\/memory\/profiles\/([^/]+)\/providers\/([^/]+)\/(\w+)$/.exec(path);
    if (!m) return { status: 404, body: { error: "not_found", message: "No such route.", request_id: "r" } };
    const [, , prov, what] = m;
    if (prov !== "honcho") return { status: 404, body: { error: "unknown_provider", message: "Unknown provider.", request_id: "r" } };
    if (method === "GET" && what === "status") return { status: 200, body: srv.status };
    if (method === "POST" && what === "connect" && body && body.method === "apikey") {
      if (body.api_key !== "good-key") {
        return { status: 400, body: { error: "invalid_request", message: "The API key was not stored: Honcho refused the key (HTTP 401).", request_id: "r" } };
      }
      Object.assign(srv.status, { connected: true, auth: "apikey", token: null, reauth_required: false, flow: null });
      return { status: 200, body: srv.status };
    }
    if (method === "POST" && what === "connect") {
      srv.status.flow = srv.pendingFlow();
      return { status: 202, body: srv.status };
    }
    if (method === "POST" && what === "cancel") {
      if (srv.status.flow && srv.status.flow.state === "pending") srv.status.flow = Object.assign({}, srv.status.flow, { state: "idle" });
      return { status: 200, body: srv.status };
    }
    if (method === "DELETE" && what === "connection") {
      Object.assign(srv.status, { connected: false, auth: null, token: null, reauth_required: false, flow: null });
      return { status: 200, body: srv.disconnected || { disconnected: true, removed: true, revoked: true, revoke_error: null } };
    }
    return { status: 400, body: { error: "invalid_request", message: "Bad request.", request_id: "r" } };
  };
  return srv;
}

// openFakeStream is an event stream response whose body the test feeds.
function openFakeStream(srv, signal) {
  const queue = [];
  let wake = null;
  let ended = false;
  const stream = {
    push(text) {
      queue.push(new TextEncoder().encode(text));
      if (wake) wake();
    },
    end() {
      ended = true;
      if (wake) wake();
    },
  };
  if (signal) signal.addEventListener("abort", () => stream.end());
  srv.streams.push(stream);
  const reader = {
    async read() {
      while (!queue.length && !ended) await new Promise((r) => (wake = r));
      wake = null;
      if (queue.length) return { value: queue.shift(), done: false };
      return { value: undefined, done: true };
    },
  };
  return { ok: true, status: 200, body: { getReader: () => reader }, text: async () => "" };
}

// ---- one page instance ----------------------------------------------------

async function flush() {
  for (let i = 0; i < 30; i++) await new Promise((r) => setImmediate(r));
}

async function openPage({ status = {}, query = "", hash = "", bodyAttrs = {}, setup } = {}) {
  const doc = new Doc();
  for (const [k, v] of Object.entries(bodyAttrs)) doc.body.setAttribute(k, v);
  const srv = makeServer(status);
  if (setup) setup(srv);
  const clock = { now: 1_800_000_000_000, timers: new Map(), next: 1 };
  const events = [];
  doc.addEventListener("memconnect:connected", (e) => events.push(e.detail));
  const opened = [];
  const replaced = []; // URLs history.replaceState was given
  const channels = []; // BroadcastChannel("memconnect") instances of the page
  const copied = []; // what the page put on the clipboard
  const win = new EventTarget();
  class FakeBroadcastChannel extends EventTarget {
    constructor(name) {
      super();
      this.name = name;
      channels.push(this);
    }
    postMessage() {}
    close() {}
  }

  const sandbox = {
    document: doc,
    location: { href: `http://127.0.0.1:8080/${query}${hash}`, pathname: "/", search: query, hash, origin: "http://127.0.0.1:8080" },
    history: {
      replaceState: (state, title, url) => {
        replaced.push(url);
        sandbox.location.href = `http://127.0.0.1:8080${url}`;
        sandbox.location.hash = "";
      },
    },
    addEventListener: (...a) => win.addEventListener(...a),
    BroadcastChannel: FakeBroadcastChannel,
    open: (...args) => {
      opened.push(args);
      return null; // what browsers return for "noopener"
    },
    fetch: async (url, opts = {}) => {
      const method = opts.method || "GET";
      const body = opts.body === undefined ? undefined : JSON.parse(opts.body);
      srv.requests.push({ method, url, body, headers: opts.headers || {} });
      await null;
      if (srv.down) throw new TypeError("Failed to fetch");
      if (srv.streaming && method === "GET" && url.endsWith("/events")) return openFakeStream(srv, opts.signal);
      const res = srv.handle(method, url, body);
      const text = JSON.stringify(res.body);
      return { ok: res.status >= 200 && res.status < 300, status: res.status, text: async () => text };
    },
    setTimeout: (fn, ms) => {
      const id = clock.next++;
      clock.timers.set(id, { at: clock.now + (ms || 0), fn });
      return id;
    },
    clearTimeout: (id) => clock.timers.delete(id),
    Date: class extends Date {
      static now() {
        return clock.now;
      }
    },
    navigator: { clipboard: { writeText: async (text) => copied.push(text) } },
    URL,
    URLSearchParams,
    AbortController,
    TextDecoder,
    CustomEvent,
    Event,
    console,
  };
  sandbox.window = sandbox;
  vm.createContext(sandbox);
  vm.runInContext(appSrc, sandbox, { filename: "app.js" });
  await flush();

  const $ = (id) => doc.getElementById(id);
  const page = {
    doc,
    srv,
    events,
    opened,
    replaced,
    copied,
    $,
    async advance(ms) {
      const end = clock.now + ms;
      for (;;) {
        await flush();
        let best = null;
        for (const [id, t] of clock.timers) if (t.at <= end && (!best || t.at < best.t.at)) best = { id, t };
        if (!best) break;
        clock.timers.delete(best.id);
        clock.now = best.t.at;
        best.t.fn();
      }
      clock.now = end;
      await flush();
    },
    // broadcast delivers data as the callback page's BroadcastChannel would.
    async broadcast(data) {
      for (const c of channels) if (c.name === "memconnect") c.dispatchEvent(Object.assign(new Event("message"), { data }));
      await flush();
    },
    // message delivers a window message from origin.
    async message(data, origin) {
      win.dispatchEvent(Object.assign(new Event("message"), { data, origin }));
      await flush();
    },
    async click(id) {
      $(id).focus();
      $(id).click();
      await flush();
    },
    statusPolls() {
      return srv.requests.filter((r) => r.method === "GET" && r.url.endsWith("/status")).length;
    },
    visible(id) {
      return !$(id).hidden;
    },
    text(id) {
      return $(id).textContent;
    },
  };
  return page;
}

// ---- scenarios -----------------------------------------------------------

const STATUS = "/api/memory/profiles/default/providers/honcho/status";
const scenarios = {
  async idleDefaults() {
    const p = await openPage({ query: "?token=s3cret" });
    assert.equal(p.$("provider-select").value, "honcho");
    assert.deepEqual(p.$("provider-select").options.map((o) => [o.value, o.textContent]), [
      ["", "Built-in (no provider)"],
      ["honcho", "Honcho"],
    ]);
    assert.ok(p.visible("connect-button"));
    assert.equal(p.text("connect-button"), "Connect");
    assert.equal(p.text("connect-state"), "Sign-in needed", "the state comes first");
    assert.ok(p.visible("connect-state"));
    assert.ok(p.visible("device-button"), "the provider lists the device flow");
    assert.ok(!p.visible("disconnect-button"));
    assert.ok(!p.visible("stop-waiting"));
    assert.ok(!p.visible("retry-button"));
    assert.ok(!p.visible("authorize-fallback"));
    assert.match(p.text("provider-text"), /Honcho/);
    assert.equal(p.text("connect-status"), "");
    const st = p.srv.requests.find((r) => r.url === STATUS);
    assert.ok(st, "status was fetched");
    assert.equal(st.headers.Authorization, "Bearer s3cret");
  },

  async connectSessionFromFragment() {
    const p = await openPage({ query: "?token=host", hash: "#session=mcs1.abc.def&profile=work" });
    assert.deepEqual(p.replaced, ["/?token=host"], "the session left the address bar at once");
    const st = p.srv.requests.find((r) => r.url === "/api/memory/profiles/work/providers/honcho/status");
    assert.ok(st, "the session's profile is the one shown");
    assert.equal(p.text("profile-line"), "Profile: work", "and the page says which");
    for (const r of p.srv.requests) assert.equal(r.headers.Authorization, "Bearer mcs1.abc.def");
  },

  async noTokenNoHeader() {
    const p = await openPage();
    assert.ok(p.srv.requests.length > 0);
    for (const r of p.srv.requests) assert.equal(r.headers.Authorization, undefined);
  },

  async dataAttributes() {
    const p = await openPage({ bodyAttrs: { "data-api": "/x/mem/", "data-profile": "work", "data-token": "t1" }, setup: (srv) => {
      srv.override = (method, path) => {
        if (path === "/x/mem/providers") return { status: 200, body: { providers: srv.providers } };
        if (path === "/x/mem/profiles/work/providers/honcho/status") return { status: 200, body: srv.status };
        return undefined;
      };
    } });
    assert.ok(p.srv.requests.some((r) => r.url === "/x/mem/profiles/work/providers/honcho/status" && r.headers.Authorization === "Bearer t1"));
    assert.equal(p.text("connect-button"), "Connect");
  },

  async builtInHasNoLink() {
    const p = await openPage({ bodyAttrs: { "data-provider": "" } });
    assert.equal(p.$("provider-select").value, "");
    assert.ok(!p.visible("connect-button"));
    assert.equal(p.statusPolls(), 0);
    // Switching to Honcho and back.
    p.$("provider-select").value = "honcho";
    p.$("provider-select").dispatchEvent(new Event("change"));
    await p.advance(0);
    assert.ok(p.visible("connect-button"));
    p.$("provider-select").value = "";
    p.$("provider-select").dispatchEvent(new Event("change"));
    await p.advance(0);
    assert.ok(!p.visible("connect-button"));
    assert.ok(!p.visible("connect-state"));
  },

  async unsupported() {
    const p = await openPage({ status: { supported: false } });
    assert.ok(!p.visible("connect-button"));
    assert.equal(p.text("provider-text"), "Honcho can't be connected from this app.");
    const q = await openPage({ setup: (srv) => {
      srv.override = (m, path) => (path === STATUS ? { status: 404, body: { error: "unsupported", message: "Not here.", request_id: "r" } } : undefined);
    } });
    assert.ok(!q.visible("connect-button"));
    assert.equal(q.text("connect-status"), "");
  },

  async apiKeySignIn() {
    const p = await openPage({ setup: (srv) => (srv.providers[0].auth_methods = ["browser", "device", "apikey"]) });
    assert.ok(p.visible("key-button"));
    assert.ok(!p.visible("key-row"));
    await p.click("key-button");
    assert.ok(p.visible("key-row"));
    assert.equal(p.doc.activeElement, p.$("key-input"));
    assert.equal(p.text("key-label"), "API key for Honcho");
    await p.click("key-save");
    assert.equal(p.text("connect-status"), "Paste the API key first.");

    p.$("key-input").value = "wrong-key";
    await p.click("key-save");
    assert.equal(p.text("connect-status"), "The API key was not stored: Honcho refused the key (HTTP 401).");
    assert.ok(p.visible("key-row"), "a refused key stays to be corrected");
    assert.equal(p.doc.activeElement, p.$("key-input"));

    p.$("key-input").value = "  good-key ";
    await p.click("key-save");
    const sent = p.srv.requests.filter((r) => r.method === "POST" && r.url.endsWith("/connect")).pop();
    assert.deepEqual(sent.body, { method: "apikey", api_key: "good-key" });
    assert.ok(!p.visible("key-row"));
    assert.equal(p.$("key-input").value, "", "the key leaves the field once stored");
    assert.equal(p.text("connect-status"), "Connected to Honcho with an API key.");
    assert.equal(p.text("connect-state"), "Connected with an API key");
    assert.ok(p.visible("disconnect-button"));
    assert.equal(p.text("key-button"), "Change the key");
    assert.equal(p.events.length, 1);
    assert.equal(p.opened.length, 0, "no sign-in window for a key");
  },

  async apiKeyCancel() {
    const p = await openPage({ setup: (srv) => (srv.providers[0].auth_methods = ["browser", "apikey"]) });
    await p.click("key-button");
    p.$("key-input").value = "half-typed";
    await p.click("key-cancel");
    assert.ok(!p.visible("key-row"));
    assert.ok(p.visible("key-button"));
    assert.equal(p.$("key-input").value, "");
  },

  async keyOnlyProvider() {
    const p = await openPage({
      status: { supported: false },
      setup: (srv) => (srv.providers[0].auth_methods = ["apikey"]),
    });
    assert.equal(p.text("connect-button"), "Enter an API key");
    assert.ok(!p.visible("key-button"));
    assert.equal(p.text("provider-text"), "Store your assistant's memory in Honcho.");
    await p.click("connect-button");
    assert.ok(p.visible("key-row"));
    p.$("key-input").value = "good-key";
    p.$("key-input").dispatchEvent(Object.assign(new Event("keydown"), { key: "Enter" }));
    await p.advance(0);
    assert.equal(p.text("connect-button"), "Change the key");
    assert.equal(p.opened.length, 0);
  },

  async labels() {
    const a = await openPage({ status: { connected: true, auth: "apikey" } });
    assert.equal(a.text("connect-button"), "Sign in to Honcho instead");
    assert.equal(a.$("connect-button").getAttribute("data-primary"), "false", "connected: nothing loud");
    assert.equal(a.text("connect-state"), "Connected with an API key");
    assert.ok(a.visible("connect-state"));
    assert.ok(a.visible("disconnect-button")); // removes the profile's own key

    const o = await openPage({ status: { connected: true, auth: "oauth" } });
    assert.equal(o.text("connect-button"), "Reconnect");
    assert.equal(o.$("connect-button").getAttribute("data-primary"), "false", "connected: nothing loud");
    assert.equal(o.text("connect-state"), "Connected · renews automatically");
    const named = await openPage({ status: { connected: true, auth: "oauth", account: "<alice>", token: { expires_in: 3540 } } });
    assert.equal(named.text("connect-state"), "Connected as <alice> · renews automatically");
    assert.ok(o.visible("disconnect-button"));

    const f = await openPage({ status: { connected: true, auth: "oauth", health: "failing", last_error: { since: "2026-11-28T10:42:00Z", message: "HTTP 401" } } });
    assert.match(f.text("connect-state"), /^Renewal failing since \d\d:\d\d · retrying; reconnect if it goes on$/);
    assert.equal(f.text("state-detail"), "Details: HTTP 401", "the status code is a detail, not the news");
    assert.ok(f.visible("state-detail"));
    assert.equal(f.text("connect-button"), "Reconnect");
    assert.equal(f.$("connect-button").getAttribute("data-primary"), "true", "failing: the remedy is the filled button");
    assert.ok(!o.visible("state-detail"));

    const r = await openPage({ status: { connected: false, auth: "oauth", reauth_required: true } });
    assert.equal(r.text("connect-button"), "Sign in again");
    assert.equal(r.$("connect-button").getAttribute("data-primary"), "true", "the thing to do is the filled button");
    const n = await openPage();
    assert.equal(n.text("connect-button"), "Connect");
    assert.equal(n.$("connect-button").getAttribute("data-primary"), "true");
    assert.equal(n.text("profile-line"), "Profile: default");
    assert.equal(r.text("connect-state"), "Sign-in expired");
  },

  async connectFlow() {
    const p = await openPage();
    await p.click("connect-button");
    const post = p.srv.requests.find((r) => r.method === "POST");
    assert.equal(post.url, "/api/memory/profiles/default/providers/honcho/connect");
    assert.deepEqual(post.body, { method: "browser", source: "hermes-desktop" });
    assert.equal(post.headers["Content-Type"], "application/json");
    assert.deepEqual(p.opened, [[p.srv.authorizeURL, "_blank", "noopener,popup,width=520,height=720"]]);
    assert.equal(p.text("connect-status"), "Waiting for browser consent…");
    assert.ok(!p.visible("connect-button"));
    assert.ok(p.visible("stop-waiting"));
    assert.equal(p.doc.activeElement, p.$("stop-waiting"), "focus follows to Stop waiting");
    assert.ok(p.visible("authorize-fallback"));
    assert.equal(p.$("authorize-link").getAttribute("href"), p.srv.authorizeURL);

    const before = p.statusPolls();
    await p.advance(1500);
    assert.equal(p.statusPolls(), before + 1, "one poll per 1.5 s");
    await p.advance(3000);
    assert.equal(p.statusPolls(), before + 3);
    assert.equal(p.events.length, 0);

    p.srv.grant();
    await p.advance(1500);
    assert.equal(p.events.length, 1);
    assert.deepEqual(JSON.parse(JSON.stringify(p.events[0])), { provider: "honcho", profile: "default", flowId: "f1" });
    assert.equal(p.text("connect-state"), "Connected · renews automatically");
    assert.equal(p.text("connect-button"), "Reconnect");
    assert.ok(p.visible("disconnect-button"));
    assert.ok(!p.visible("stop-waiting"));
    assert.ok(!p.visible("authorize-fallback"));
    assert.equal(p.text("connect-status"), "Connected to Honcho.");
    assert.equal(p.$("connect-status").getAttribute("data-tone"), "announce", "said to a screen reader; the state line says it on screen");
    assert.equal(p.doc.activeElement, p.$("connect-button"), "focus goes back to the link");

    const after = p.statusPolls();
    await p.advance(60_000);
    assert.equal(p.statusPolls(), after, "polling stopped");
    assert.equal(p.events.length, 1, "event fired once");
    assert.equal(p.text("connect-status"), "", "the note fades once announced");
    assert.match(p.text("connect-state"), /^Connected · renews automatically/, "the state stays");
  },

  async connectedViaStatusWithoutFlow() {
    const p = await openPage();
    await p.click("connect-button");
    p.srv.grant();
    p.srv.status.flow = null;
    await p.advance(1500);
    assert.equal(p.events.length, 1);
    assert.match(p.text("connect-state"), /^Connected/);
  },

  async reconnectWaitsForNewFlow() {
    const p = await openPage({ status: { connected: true, auth: "oauth", token: { expires_at: "2026-11-28T22:00:00Z" } } });
    await p.click("connect-button");
    await p.advance(4500);
    assert.equal(p.events.length, 0, "an old grant is not a finished sign-in");
    assert.ok(p.visible("stop-waiting"));
    p.srv.grant();
    await p.advance(1500);
    assert.equal(p.events.length, 1);
  },

  async twoFlowsTwoEvents() {
    const p = await openPage();
    await p.click("connect-button");
    p.srv.grant();
    await p.advance(1500);
    await p.click("connect-button");
    assert.ok(p.visible("stop-waiting"));
    p.srv.grant();
    await p.advance(1500);
    assert.equal(p.events.length, 2);
    assert.deepEqual(p.events.map((e) => e.flowId), ["f1", "f2"]);
  },

  async giveUpAndRetry() {
    const p = await openPage();
    await p.click("connect-button");
    await p.advance(119_000);
    assert.ok(p.visible("stop-waiting"));
    await p.advance(1_000);
    assert.equal(p.text("connect-status"), "Still waiting? The sign-in window may have been closed.");
    assert.ok(p.visible("retry-button"));
    assert.ok(!p.visible("stop-waiting"));
    assert.equal(p.doc.activeElement, p.$("retry-button"));
    const polls = p.statusPolls();
    await p.advance(10_000);
    assert.equal(p.statusPolls(), polls, "no polling after giving up");

    const n = p.srv.requests.length;
    await p.click("retry-button");
    const next = p.srv.requests.slice(n).map((r) => `${r.method} ${r.url.split("/").pop()}`);
    assert.deepEqual(next, ["POST cancel", "POST connect"]);
    assert.equal(p.opened.length, 2);
    assert.ok(p.visible("stop-waiting"));
    assert.ok(!p.visible("retry-button"));
    assert.equal(p.text("connect-status"), "Waiting for browser consent…");
  },

  async flowErrorStaysUntilDismissed() {
    const p = await openPage();
    await p.click("connect-button");
    p.srv.status.flow = Object.assign({}, p.srv.status.flow, { state: "error", detail: "You said no to <Honcho>." });
    await p.advance(1500);
    assert.equal(p.text("connect-status"), "You said no to <Honcho>.");
    assert.equal(p.$("connect-status").getAttribute("data-tone"), "error");
    assert.ok(p.visible("connect-button"), "never a dead end");
    assert.equal(p.text("connect-button"), "Connect");
    assert.ok(!p.visible("stop-waiting"));
    const polls = p.statusPolls();
    await p.advance(60_000);
    assert.equal(p.text("connect-status"), "You said no to <Honcho>.", "an error stays to be read");
    assert.ok(p.visible("dismiss-error"));
    await p.click("dismiss-error");
    assert.equal(p.text("connect-status"), "");
    assert.ok(!p.visible("dismiss-error"));
    assert.equal(p.doc.activeElement, p.$("provider-select"), "focus stays on the pane");
    assert.equal(p.statusPolls(), polls);
    assert.equal(p.events.length, 0);
  },

  async nextActionClearsError() {
    const p = await openPage();
    await p.click("connect-button");
    p.srv.status.flow = Object.assign({}, p.srv.status.flow, { state: "error", detail: "Sign-in was denied" });
    await p.advance(1500);
    assert.equal(p.text("connect-status"), "Sign-in was denied");
    await p.click("connect-button");
    assert.equal(p.text("connect-status"), "Waiting for browser consent…");
    assert.ok(!p.visible("dismiss-error"));
  },

  async unauthorizedSaysWhatToDo() {
    // A missing or wrong session token: /providers answers 401. The page
    // says so and keeps saying it; it does not quietly show only Built-in.
    const p = await openPage({ setup: (srv) => {
      srv.override = () => ({ status: 401, body: { error: "unauthorized", message: "This server needs a session token. Send it as \"Authorization: Bearer TOKEN\".", request_id: "r" } });
    } });
    assert.match(p.text("connect-status"), /session token/);
    assert.match(p.text("connect-status"), /Open Memory settings from the app again/);
    assert.doesNotMatch(p.text("connect-status"), /Bearer/);
    assert.equal(p.$("connect-status").getAttribute("data-tone"), "error");
    await p.advance(60_000);
    assert.match(p.text("connect-status"), /session token/);
  },

  async apiErrorMessageShown() {
    const p = await openPage({ setup: (srv) => {
      srv.override = (m, path) =>
        m === "POST" && path.endsWith("/connect")
          ? { status: 502, body: { error: "upstream_error", message: "Honcho did not answer. Try again in a minute.", request_id: "r1" } }
          : undefined;
    } });
    await p.click("connect-button");
    assert.equal(p.text("connect-status"), "Honcho did not answer. Try again in a minute.");
    assert.equal(p.text("status-detail"), "Details: HTTP 502 upstream_error", "the status code is a detail");
    assert.ok(p.visible("status-detail"));
    assert.ok(p.visible("connect-button"));
    assert.equal(p.opened.length, 0);
    await p.advance(8_000);
    assert.equal(p.text("connect-status"), "Honcho did not answer. Try again in a minute.");
    await p.click("dismiss-error");
    assert.ok(!p.visible("status-detail"), "the detail goes with its message");

    // A failure without the server's words: what to do, the code aside.
    const q = await openPage({ setup: (srv) => {
      srv.override = (m, path) => (m === "POST" && path.endsWith("/connect") ? { status: 500, body: null } : undefined);
    } });
    await q.click("connect-button");
    assert.equal(q.text("connect-status"), "Something went wrong on the memory service's side. Please try again.");
    assert.equal(q.text("status-detail"), "Details: HTTP 500");
  },

  async networkDown() {
    const p = await openPage();
    p.srv.down = true;
    await p.click("connect-button");
    assert.match(p.text("connect-status"), /Can't reach the memory service/);
    assert.ok(p.visible("connect-button"));
  },

  async pollHiccupKeepsWaiting() {
    const p = await openPage();
    await p.click("connect-button");
    p.srv.down = true;
    await p.advance(3000);
    assert.ok(p.visible("stop-waiting"));
    p.srv.down = false;
    p.srv.grant();
    await p.advance(1500);
    assert.equal(p.events.length, 1);
  },

  async stopWaiting() {
    const p = await openPage();
    await p.click("connect-button");
    await p.click("stop-waiting");
    assert.ok(p.srv.requests.some((r) => r.method === "POST" && r.url.endsWith("/honcho/cancel")));
    assert.ok(p.visible("connect-button"));
    assert.equal(p.text("connect-button"), "Connect");
    assert.ok(!p.visible("stop-waiting"));
    assert.ok(!p.visible("authorize-fallback"));
    assert.equal(p.text("connect-status"), "");
    assert.equal(p.doc.activeElement, p.$("connect-button"));
    const polls = p.statusPolls();
    await p.advance(10_000);
    assert.equal(p.statusPolls(), polls);
  },

  async disconnectWithoutRevocation() {
    // A server that cannot revoke: the page says so, and keeps saying it.
    const message =
      "The sign-in was removed here, but Honcho offers no way to revoke it: its access token works until 2026-12-07 06:00 UTC, and its refresh token until Honcho expires it.";
    const p = await openPage({ status: { connected: true, auth: "oauth" } });
    p.srv.disconnected = { disconnected: true, removed: true, revoked: false, revoke_error: "no revocation endpoint", valid_until: "2026-12-07T06:00:00Z", message };
    await p.click("disconnect-button");
    await p.click("disconnect-yes");
    assert.equal(p.text("connect-status"), message);
    assert.equal(p.text("connect-button"), "Connect");
    await p.advance(8_000);
    assert.equal(p.text("connect-status"), message);
  },

  async disconnect() {
    const p = await openPage({ status: { connected: true, auth: "oauth" } });
    await p.click("disconnect-button");
    // It asks once, focus on the safe answer, and nothing is sent yet.
    assert.ok(p.visible("disconnect-confirm"));
    assert.equal(p.text("disconnect-question"), "Disconnect from Honcho? Your assistant stops using it for memory until you connect again.");
    assert.equal(p.doc.activeElement, p.$("disconnect-no"));
    assert.ok(!p.visible("connect-button") && !p.visible("disconnect-button"), "only the question's answers");
    assert.ok(!p.srv.requests.some((r) => r.method === "DELETE"));
    await p.click("disconnect-no");
    assert.ok(!p.visible("disconnect-confirm"));
    assert.ok(p.visible("disconnect-button"));
    assert.equal(p.doc.activeElement, p.$("disconnect-button"));
    assert.ok(!p.srv.requests.some((r) => r.method === "DELETE"), "Keep connected keeps it");
    await p.click("disconnect-button");
    await p.click("disconnect-yes");
    assert.ok(!p.visible("disconnect-confirm"));
    assert.ok(p.srv.requests.some((r) => r.method === "DELETE" && r.url.endsWith("/honcho/connection")));
    assert.equal(p.text("connect-button"), "Connect");
    assert.ok(!p.visible("disconnect-button"));
    assert.equal(p.text("connect-state"), "Sign-in needed");
    assert.equal(p.text("connect-status"), "Disconnected from Honcho.");
    assert.equal(p.doc.activeElement, p.$("connect-button"));
    await p.advance(8_000);
    assert.equal(p.text("connect-status"), "");
    assert.equal(p.text("connect-button"), "Connect");
  },

  async resumesPendingFlowOnLoad() {
    const p = await openPage({ setup: (srv) => {
      srv.status.flow = srv.pendingFlow();
    } });
    assert.ok(p.visible("stop-waiting"));
    assert.equal(p.opened.length, 0, "no window without a click");
    assert.ok(p.visible("authorize-fallback"));
    p.srv.grant();
    await p.advance(1500);
    assert.equal(p.events.length, 1);
  },

  async unsafeURLNeverOpened() {
    const p = await openPage({ setup: (srv) => {
      srv.authorizeURL = "javascript:alert(1)";
    } });
    await p.click("connect-button");
    assert.equal(p.opened.length, 0);
    assert.ok(!p.visible("authorize-fallback"));
    assert.equal(p.$("authorize-link").getAttribute("href"), null);
  },

  async serverTextIsText() {
    const evil = '<img src=x onerror="alert(1)">';
    const p = await openPage({ setup: (srv) => {
      srv.providers = [{ name: "honcho", display_name: evil, auth_methods: ["browser"] }];
    } });
    assert.equal(p.$("provider-select").options[1].textContent, evil);
    assert.ok(p.text("provider-text").includes(evil));
  },

  async deviceSignIn() {
    const p = await openPage({ setup: (srv) => {
      srv.override = (m, path, body) => {
        if (m !== "POST" || !path.endsWith("/connect") || !body || body.method !== "device") return undefined;
        srv.status.flow = Object.assign(srv.pendingFlow(), { method: "device", user_code: "WDJB-MJHT", verification_uri: "https://auth.example.test/device",
          authorize_url: "https://auth.example.test/device?user_code=WDJB-MJHT", redirect_uri: null,
          expires_at: new Date(1_800_000_000_000 + 600_000).toISOString() });
        return { status: 202, body: srv.status };
      };
    } });
    await p.click("device-button");
    const connect = p.srv.requests.find((r) => r.method === "POST" && r.url.endsWith("/connect"));
    assert.equal(connect.body.method, "device");
    // The code on its own, large, with a copy button and the time it has left.
    assert.equal(p.text("connect-status"), "Enter this code on the sign-in page. Waiting for it…");
    assert.ok(p.visible("device-box"));
    assert.equal(p.text("device-code"), "WDJB-MJHT");
    assert.equal(p.text("code-countdown"), "The code works for 10:00 more.");
    assert.ok(p.visible("stop-waiting"));
    assert.ok(p.visible("authorize-fallback"));
    await p.click("copy-code");
    assert.deepEqual(p.copied, ["WDJB-MJHT"]);
    assert.equal(p.text("copy-code"), "Copied");
    await p.advance(3000);
    assert.equal(p.text("copy-code"), "Copy code");
    assert.equal(p.text("code-countdown"), "The code works for 9:57 more.");
    await p.advance(150_000); // past the browser's give-up: the code still works
    assert.ok(p.visible("device-box"));
    assert.equal(p.text("code-countdown"), "The code works for 7:27 more.");
    p.srv.grant();
    await p.advance(1500);
    assert.equal(p.events.length, 1);
    assert.match(p.text("connect-state"), /^Connected/);
    assert.ok(!p.visible("device-box"), "the code goes with the sign-in");
    // A provider without the device flow offers no code.
    const q = await openPage({ setup: (srv) => {
      srv.providers = [{ name: "honcho", display_name: "Honcho", auth_methods: ["browser"] }];
    } });
    assert.ok(!q.visible("device-button"));
  },

  async handoffChecksStatusAtOnce() {
    const p = await openPage();
    await p.click("connect-button");
    const polls = p.statusPolls();
    p.srv.grant();
    // Another origin's message, or another kind of message, changes nothing.
    await p.message({ type: "memconnect:signin", outcome: "connected" }, "https://evil.example");
    await p.broadcast({ type: "something-else" });
    assert.equal(p.statusPolls(), polls);
    assert.equal(p.events.length, 0);
    // The callback page's word: the status is read at once, not at the next poll.
    await p.broadcast({ type: "memconnect:signin", outcome: "connected" });
    assert.equal(p.statusPolls(), polls + 1);
    assert.equal(p.events.length, 1);
    assert.match(p.text("connect-state"), /^Connected/);
    // The same from the opener's window message, of this origin.
    const q = await openPage();
    await q.click("connect-button");
    q.srv.grant();
    await q.message({ type: "memconnect:signin", outcome: "connected" }, "http://127.0.0.1:8080");
    assert.equal(q.events.length, 1);
  },

  async streamReplacesPolling() {
    const p = await openPage({ setup: (srv) => {
      srv.streaming = true;
    } });
    assert.equal(p.srv.streams.length, 1, "the pane follows the provider's events");
    await p.click("connect-button");
    const polls = p.statusPolls();
    await p.advance(10_000);
    assert.equal(p.statusPolls(), polls, "no status polling while the stream is open");
    assert.ok(p.visible("stop-waiting"));
    p.srv.grant();
    p.srv.streams[0].push('id: 3\nevent: connection\ndata: {"connection":"connected"}\n\n');
    await p.advance(0);
    assert.equal(p.statusPolls(), polls + 1, "the event made the pane read the status once");
    assert.equal(p.events.length, 1);
    assert.match(p.text("connect-state"), /^Connected/);
    // A change made elsewhere shows up too, with no flow being watched.
    Object.assign(p.srv.status, { connected: false, auth: null, token: null, flow: null });
    p.srv.streams[0].push('id: 4\nevent: connection\ndata: {"connection":"disconnected"}\n\n');
    await p.advance(0);
    assert.equal(p.text("connect-state"), "Sign-in needed");
    // The stream ends: polling takes over while waiting, and the stream is
    // opened again.
    await p.click("connect-button");
    p.srv.streams[0].end();
    await p.advance(1500);
    assert.ok(p.statusPolls() > polls + 2, "polling resumed");
    await p.advance(5000);
    assert.equal(p.srv.streams.length, 2, "the stream was opened again");
  },

  async providerChangeStopsPolling() {
    const p = await openPage();
    await p.click("connect-button");
    p.$("provider-select").value = "";
    p.$("provider-select").dispatchEvent(new Event("change"));
    await p.advance(0);
    const polls = p.statusPolls();
    p.srv.grant();
    await p.advance(10_000);
    assert.equal(p.statusPolls(), polls);
    assert.equal(p.events.length, 0);
    assert.ok(!p.visible("stop-waiting"));
    assert.equal(p.text("connect-status"), "");
  },
};

(async () => {
  process.on("unhandledRejection", (err) => {
    console.error("unhandled rejection:", err);
    process.exit(1);
  });
  const only = process.env.HARNESS_ONLY;
  let failed = 0;
  for (const [name, fn] of Object.entries(scenarios)) {
    if (only && name !== only) continue;
    try {
      await fn();
      console.log(`ok   ${name}`);
    } catch (err) {
      failed++;
      console.log(`FAIL ${name}\n${err && err.stack ? err.stack : err}`);
    }
  }
  process.exit(failed ? 1 : 0);
})();
