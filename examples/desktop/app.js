/*
 * memconnect desktop: the "Connect your memory provider" link of the Memory
 * settings pane. Plain browser JavaScript: no framework, no build step.
 *
 * Everything the server sends is put on the page with textContent or as an
 * attribute value (and URLs only when they are http or https), never parsed
 * as HTML.
 *
 * Contract with the host app:
 *   <body data-api="/api/memory" data-profile="default"
 *         data-provider="honcho" data-token="...">   (all optional)
 *   ?token=... in the page URL wins over data-token; it is sent as
 *   "Authorization: Bearer ...".
 *   #session=...&profile=... in the page URL (a connect session the host's
 *   backend minted for one profile) wins over both, and is removed from
 *   the address bar at once; profile there wins over data-profile.
 *   document receives exactly one "memconnect:connected" CustomEvent per
 *   finished sign-in, detail {provider, profile, flowId}.
 */
(() => {
  "use strict";

  const POLL_MS = 1500;
  // With the event stream open the status is read when an event says so;
  // this slow poll is only a net (a sign-in that ends on another server).
  const SAFETY_POLL_MS = 15 * 1000;
  const STREAM_RETRY_MS = 5 * 1000;
  const GIVE_UP_MS = 120 * 1000;
  const NOTE_CLEAR_MS = 8 * 1000; // "Connected to …" has been announced by then
  const SOURCE = "hermes-desktop";

  const TEXT = Object.freeze({
    builtIn: "Your assistant keeps its memory on this computer.",
    provider: (name) => `Store your assistant's memory in ${name}.`,
    unsupported: (name) => `${name} can't be connected from this app.`,
    connect: "Connect",
    reconnect: "Reconnect",
    signInAgain: "Sign in again",
    signInInstead: (name) => `Sign in to ${name} instead`,
    // The state comes first on the line, then what to do about it.
    signInNeeded: "Sign-in needed",
    connectedAs: (who) => `Connected${who ? ` as ${who}` : ""} · renews automatically`,
    renewalFailing: (since) => `Renewal failing since ${since} · retrying; reconnect if it goes on`,
    detail: (why) => `Details: ${why}`,
    apiKey: "Connected with an API key",
    expired: "Sign-in expired",
    useCode: "Use a code instead",
    opening: "Opening the sign-in page…",
    waiting: "Waiting for browser consent…",
    waitingCode: "Enter this code on the sign-in page. Waiting for it…",
    copyCode: "Copy code",
    copied: "Copied",
    codeLeft: (left) => `The code works for ${left} more.`,
    codeExpired: "The code has expired: stop waiting, then connect again.",
    gaveUp: "Still waiting? The sign-in window may have been closed.",
    done: (name) => `Connected to ${name}.`,
    disconnecting: "Disconnecting…",
    confirmDisconnect: (name) => `Disconnect from ${name}? Your assistant stops using it for memory until you connect again.`,
    profile: (name) => `Profile: ${name}`,
    disconnected: (name) => `Disconnected from ${name}.`,
    flowFailed: "Sign-in didn't finish. Please try again.",
    flowEnded: "Sign-in stopped before it finished. You can try again.",
    noStart: "The sign-in couldn't start. Please try again.",
    offline: "Can't reach the memory service. Check that the app is running, then try again.",
    httpError: "Something went wrong on the memory service's side. Please try again.",
    unauthorized:
      "This page can't use the memory service: the app did not give it the right session token. Open Memory settings from the app again.",
    openPage: "Open the sign-in page",
    useKey: "Use an API key",
    enterKey: "Enter an API key",
    changeKey: "Change the key",
    keyLabel: (name) => `API key for ${name}`,
    keyEmpty: "Paste the API key first.",
    keyChecking: "Checking the key…",
    keySaved: (name) => `Connected to ${name} with an API key.`,
  });

  // A connect session handed in the fragment: taken, then removed from the
  // address bar (and so from history and bookmarks) before anything else.
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (fragment.has("session")) {
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }

  const body = document.body;
  const config = Object.freeze({
    api: (body.getAttribute("data-api") || "/api/memory").replace(/\/+$/, ""),
    profile: fragment.get("profile") || body.getAttribute("data-profile") || "default",
    token:
      fragment.get("session") ||
      new URLSearchParams(window.location.search).get("token") ||
      body.getAttribute("data-token") ||
      "",
    provider: body.hasAttribute("data-provider") ? body.getAttribute("data-provider") : null,
  });

  function byId(id) {
    const node = document.getElementById(id);
    if (!node) throw new Error(`memconnect desktop: #${id} is missing from the page`);
    return node;
  }

  const ui = Object.freeze({
    select: byId("provider-select"),
    text: byId("provider-text"),
    connect: byId("connect-button"),
    state: byId("connect-state"),
    detail: byId("state-detail"),
    disconnect: byId("disconnect-button"),
    confirm: byId("disconnect-confirm"),
    question: byId("disconnect-question"),
    confirmYes: byId("disconnect-yes"),
    confirmNo: byId("disconnect-no"),
    profile: byId("profile-line"),
    device: byId("device-button"),
    key: byId("key-button"),
    keyRow: byId("key-row"),
    keyLabel: byId("key-label"),
    keyInput: byId("key-input"),
    keySave: byId("key-save"),
    keyCancel: byId("key-cancel"),
    status: byId("connect-status"),
    statusDetail: byId("status-detail"),
    stop: byId("stop-waiting"),
    retry: byId("retry-button"),
    dismiss: byId("dismiss-error"),
    fallback: byId("authorize-fallback"),
    deviceBox: byId("device-box"),
    deviceCode: byId("device-code"),
    copyCode: byId("copy-code"),
    countdown: byId("code-countdown"),
    link: byId("authorize-link"),
  });

  // A status we could not load: offer Connect anyway so the person is never stuck.
  const UNKNOWN = Object.freeze({ unknown: true });

  // All mutable state of the pane lives here.
  const st = {
    names: new Map(), // provider name -> display name
    methods: new Map(), // provider name -> its sign-in methods (browser, device, apikey)
    keyOpen: false, // the API key field is shown
    confirming: false, // Disconnect was pressed once: the page asks before acting
    provider: "",
    status: null, // last status body for st.provider; null while loading, UNKNOWN after an error
    mode: "idle", // idle | waiting | gaveup
    seq: 0, // bumped by every provider change and user action; late answers to older ones are dropped
    busy: false,
    flow: null, // the sign-in being watched: {key, id, started, wasSignedIn, tokenMark, url}
    localFlows: 0,
    announced: new Set(), // flow keys that already fired memconnect:connected
    timers: { poll: 0, giveUp: 0, clear: 0, stream: 0, tick: 0, copied: 0 },
    stream: null, // the open event stream: {ctl, live, provider}
  };

  // ---- HTTP -------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function providerPath(what) {
    return (
      `${config.api}/profiles/${encodeURIComponent(config.profile)}` +
      `/providers/${encodeURIComponent(st.provider)}/${what}`
    );
  }

  async function request(method, url, payload) {
    const headers = { Accept: "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    if (config.token) headers.Authorization = `Bearer ${config.token}`;
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: payload === undefined ? undefined : JSON.stringify(payload),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (_) {
      throw new ApiError(0, "network", TEXT.offline);
    }
    let data = null;
    try {
      const raw = await res.text();
      data = raw ? JSON.parse(raw) : null;
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const code = data && typeof data.error === "string" ? data.error : "";
      // The server's 401 speaks to a developer (send a Bearer header); the
      // person at the page needs to know what to do instead.
      const message =
        res.status === 401
          ? TEXT.unauthorized
          : data && typeof data.message === "string" && data.message.trim()
            ? data.message
            : TEXT.httpError;
      throw new ApiError(res.status, code, message);
    }
    return data;
  }

  // ---- helpers ----------------------------------------------------------

  function displayName() {
    return st.names.get(st.provider) || st.provider;
  }

  // Only http(s) URLs from the server become links or windows.
  function safeURL(raw) {
    if (typeof raw !== "string" || raw === "") return "";
    try {
      const u = new URL(raw, window.location.href);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : "";
    } catch (_) {
      return "";
    }
  }

  function signedIn(s) {
    return !!(s && s.connected && s.auth !== "apikey" && !s.reauth_required);
  }

  function tokenMark(s) {
    const t = s && s.token;
    return t ? `${t.expires_at || ""}|${t.scope || ""}|${t.client_id || ""}` : "";
  }

  // "10:42": the local time of day of an RFC 3339 instant.
  function clock(at) {
    const d = new Date(at);
    if (isNaN(d)) return "a while";
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function clearTimer(name) {
    if (st.timers[name]) clearTimeout(st.timers[name]);
    st.timers[name] = 0;
  }

  function stopWatching() {
    clearTimer("poll");
    clearTimer("giveUp");
    clearTimer("tick");
    st.flow = null;
  }

  // "9:05": minutes and seconds left, from a number of seconds.
  function minSec(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  // tick shows how long the device code still works, once a second while
  // it is shown.
  function tick() {
    clearTimer("tick");
    const f = st.flow;
    if (st.mode !== "waiting" || !f || !f.code || !f.expires) return;
    const left = (f.expires - Date.now()) / 1000;
    ui.countdown.textContent = left > 0 ? TEXT.codeLeft(minSec(left)) : TEXT.codeExpired;
    if (left > 0) st.timers.tick = setTimeout(tick, 1000);
  }

  // copyCode puts the device code on the clipboard, where the browser
  // allows it; the code stays on screen to type either way.
  async function copyCode() {
    const f = st.flow;
    const clip = window.navigator && window.navigator.clipboard;
    if (!f || !f.code || !clip || typeof clip.writeText !== "function") return;
    try {
      await clip.writeText(f.code);
    } catch (_) {
      return; // not allowed here: the code is on screen to type
    }
    ui.copyCode.textContent = TEXT.copied;
    clearTimer("copied");
    st.timers.copied = setTimeout(() => {
      st.timers.copied = 0;
      ui.copyCode.textContent = TEXT.copyCode;
    }, 2000);
  }

  // ---- rendering --------------------------------------------------------

  function methods() {
    return st.methods.get(st.provider) || [];
  }

  // keyOnly: the provider signs in with an API key and no OAuth.
  function keyOnly() {
    const m = methods();
    return m.includes("apikey") && !m.includes("browser") && !m.includes("device");
  }

  // The state and the buttons of the description line for a known status,
  // or null for none. device: the provider also signs in with a code; key:
  // with an API key. For a key-only provider the main button opens the key
  // field.
  function idleLink(s) {
    if (!st.provider || s === null) return null;
    const key = methods().includes("apikey");
    if (keyOnly()) {
      if (s !== UNKNOWN && s.connected && s.auth === "apikey") {
        return { label: TEXT.changeKey, state: TEXT.apiKey, tone: "ok", disconnect: true };
      }
      return { label: TEXT.enterKey, state: s === UNKNOWN ? "" : TEXT.signInNeeded };
    }
    if (s === UNKNOWN) return { label: TEXT.connect, key };
    if (!s.supported) return null;
    // A connect session starts only sign-ins bound to this browser: a
    // device code, which anyone could enter, is not offered with one.
    const device = methods().includes("device") && !fragment.has("session");
    if (s.reauth_required) {
      return { label: TEXT.signInAgain, state: TEXT.expired, tone: "warn", disconnect: s.auth === "oauth", device, key };
    }
    if (s.connected && s.auth === "oauth" && s.health === "failing" && s.last_error) {
      const why = typeof s.last_error.message === "string" ? s.last_error.message : "";
      return { label: TEXT.reconnect, state: TEXT.renewalFailing(clock(s.last_error.since || s.last_error.at)), detail: why, tone: "warn", disconnect: true };
    }
    if (s.connected && s.auth === "oauth") {
      const who = typeof s.account === "string" ? s.account : "";
      return { label: TEXT.reconnect, state: TEXT.connectedAs(who), tone: "ok", disconnect: true };
    }
    // Connected is connected, however: the same green as OAuth.
    if (s.auth === "apikey") return { label: TEXT.signInInstead(displayName()), state: TEXT.apiKey, tone: "ok", disconnect: true, key };
    return { label: TEXT.connect, state: TEXT.signInNeeded, device, key };
  }

  function render(mode) {
    const focused = document.activeElement;
    st.mode = mode;

    const s = st.status;
    ui.text.textContent = !st.provider
      ? TEXT.builtIn
      : s && s !== UNKNOWN && !s.supported && !keyOnly()
        ? TEXT.unsupported(displayName())
        : TEXT.provider(displayName());

    let link = mode === "idle" ? idleLink(st.status) : null;
    const confirming = st.confirming && !!link && !!link.disconnect;
    st.confirming = confirming;
    show(ui.confirm, confirming);
    if (confirming) {
      ui.question.textContent = TEXT.confirmDisconnect(displayName());
      link = { state: link.state, tone: link.tone }; // the question's buttons stand in for the others
    }
    show(ui.connect, !!(link && link.label));
    ui.connect.textContent = link ? link.label : TEXT.connect;
    // The filled button is the thing to do next; connected and well, there
    // is none, so every button is quiet.
    ui.connect.setAttribute("data-primary", link && link.tone === "ok" ? "false" : "true");
    show(ui.state, !!(link && link.state));
    ui.state.textContent = (link && link.state) || "";
    ui.state.setAttribute("data-tone", (link && link.tone) || "");
    // Why, in the server's words (an HTTP status, say): a detail, not the news.
    show(ui.detail, !!(link && link.detail));
    ui.detail.textContent = link && link.detail ? TEXT.detail(link.detail) : "";
    show(ui.disconnect, !!(link && link.disconnect));
    show(ui.device, !!(link && link.device));
    const keyField = mode === "idle" && st.keyOpen && !!st.provider;
    show(ui.key, !!(link && link.key) && !keyField);
    ui.key.textContent = s && s !== UNKNOWN && s.auth === "apikey" ? TEXT.changeKey : TEXT.useKey;
    show(ui.keyRow, keyField);
    if (keyField) ui.keyLabel.textContent = TEXT.keyLabel(displayName());

    show(ui.stop, mode === "waiting");
    const code = mode === "waiting" && st.flow ? st.flow.code : "";
    show(ui.deviceBox, !!code);
    ui.deviceCode.textContent = code;
    if (!code) ui.countdown.textContent = "";
    show(ui.retry, mode === "gaveup");

    const url = mode === "waiting" && st.flow ? st.flow.url : "";
    show(ui.fallback, !!url);
    if (url) {
      ui.link.setAttribute("href", url);
      let host = "";
      try {
        host = new URL(url).host;
      } catch (_) {
        host = "";
      }
      ui.link.textContent = host ? `${TEXT.openPage} (${host})` : TEXT.openPage;
    } else {
      ui.link.removeAttribute("href");
    }

    // Keep keyboard focus on the pane when the focused control just went away.
    const managed = [ui.connect, ui.disconnect, ui.confirmYes, ui.confirmNo, ui.copyCode, ui.device, ui.key, ui.keyInput, ui.keySave, ui.keyCancel, ui.stop, ui.retry, ui.link];
    if (focused && managed.includes(focused) && (focused.hidden || (focused === ui.link && ui.fallback.hidden) || ((focused === ui.confirmYes || focused === ui.confirmNo) && ui.confirm.hidden) || (focused === ui.copyCode && ui.deviceBox.hidden))) {
      const next = [ui.stop, ui.retry, ui.connect].find((b) => !b.hidden) || ui.select;
      next.focus();
    }
  }

  function setStatus(text, tone) {
    clearTimer("clear");
    ui.status.textContent = text || "";
    ui.status.setAttribute("data-tone", tone || "");
    show(ui.dismiss, tone === "error" && !!text);
    show(ui.statusDetail, false);
    ui.statusDetail.textContent = "";
  }

  // Clear message from the live region after ms, unless something newer replaced it.
  function clearLater(message, ms) {
    clearTimer("clear");
    st.timers.clear = setTimeout(() => {
      st.timers.clear = 0;
      if (ui.status.textContent === message) setStatus("");
      if (st.mode === "idle") render("idle");
    }, ms);
  }

  // An error stays until the person dismisses it or takes the next action
  // (which clears it), so it can be read at any pace; the buttons beside it
  // stay, so it is never a dead end.
  function showError(message) {
    setStatus(message, "error");
  }

  // showFailure shows what a failed request means to the person; the HTTP
  // status, for whoever helps them, is a detail beside it.
  function showFailure(err) {
    showError(err.message);
    if (err instanceof ApiError && err.status) {
      ui.statusDetail.textContent = TEXT.detail(`HTTP ${err.status}${err.code ? ` ${err.code}` : ""}`);
      show(ui.statusDetail, true);
    }
  }

  // ---- status -----------------------------------------------------------

  async function loadStatus(seq) {
    if (!st.provider) {
      st.status = null;
      render("idle");
      return;
    }
    let s;
    try {
      s = await request("GET", providerPath("status"));
    } catch (err) {
      if (seq !== st.seq) return;
      if (err.status === 404 && (err.code === "unsupported" || err.code === "unknown_provider")) {
        st.status = { supported: false };
        render("idle");
        return;
      }
      st.status = UNKNOWN;
      render("idle");
      showFailure(err);
      return;
    }
    if (seq !== st.seq) return;
    st.status = s || { supported: false };
    const flow = s && s.supported ? s.flow : null;
    if (flow && flow.state === "pending") {
      // A sign-in is already running (page reloaded, or started elsewhere):
      // follow it, but do not pop a window without a click.
      watchFlow(flow, s, seq, false);
      return;
    }
    render("idle");
  }

  // ---- the sign-in flow -------------------------------------------------

  // startConnect signs in with method: "browser" (the page opens the
  // sign-in page) or "device" (a code to enter on the sign-in page).
  async function startConnect(method = "browser") {
    if (st.busy || !st.provider) return;
    const seq = ++st.seq;
    stopWatching();
    st.keyOpen = false;
    ui.keyInput.value = "";
    const before = st.status;
    st.busy = true;
    ui.connect.setAttribute("aria-disabled", "true");
    ui.retry.setAttribute("aria-disabled", "true");
    setStatus(TEXT.opening);
    let s;
    try {
      s = await request("POST", providerPath("connect"), { method, source: SOURCE });
    } catch (err) {
      if (seq !== st.seq) return;
      if (err.status === 409) {
        // A sign-in is already pending: pick that one up instead.
        try {
          const cur = await request("GET", providerPath("status"));
          if (seq !== st.seq) return;
          if (cur && cur.flow && cur.flow.state === "pending") {
            st.status = cur;
            watchFlow(cur.flow, before, seq, true);
            return;
          }
        } catch (_) {
          /* fall through to the original message */
        }
      }
      if (seq !== st.seq) return;
      render("idle");
      showFailure(err);
      return;
    } finally {
      st.busy = false;
      ui.connect.removeAttribute("aria-disabled");
      ui.retry.removeAttribute("aria-disabled");
    }
    if (seq !== st.seq) return;
    if (!s || !s.flow) {
      render("idle");
      showError(TEXT.noStart);
      return;
    }
    st.status = s;
    watchFlow(s.flow, before, seq, true);
  }

  // watchFlow shows the waiting state for flow and polls until it ends.
  // before is the status from before the flow, to tell a new sign-in from an
  // old one; openWindow says whether we may open the sign-in page (only right
  // after a click).
  function watchFlow(flow, before, seq, openWindow) {
    clearTimer("poll");
    clearTimer("giveUp");
    const url = safeURL(flow.authorize_url) || safeURL(flow.verification_uri);
    st.flow = {
      key: flow.id ? `${st.provider}\n${flow.id}` : `local-${++st.localFlows}`,
      id: flow.id || null,
      started: Date.now(),
      wasSignedIn: signedIn(before),
      tokenMark: tokenMark(before),
      url,
      // A device sign-in's code, and when it stops working (ms, 0 unknown).
      code: typeof flow.user_code === "string" && flow.user_code ? flow.user_code : "",
      expires: Date.parse(flow.expires_at) || 0,
    };
    if (flow.state !== "pending") {
      handleStatus(st.status, seq);
      return;
    }
    if (openWindow && url) {
      // A popup where the browser allows one, else a tab. "noopener": the
      // sign-in site never gets a handle on this page; the callback page
      // tells us the outcome on the BroadcastChannel instead. Browsers
      // return null even when the window did open, so the link to the
      // sign-in page below is always offered as well.
      try {
        window.open(url, "_blank", "noopener,popup,width=520,height=720");
      } catch (_) {
        /* blocked: the link below is the way */
      }
    }
    render("waiting");
    setStatus(st.flow.code ? TEXT.waitingCode : TEXT.waiting, "waiting");
    tick();
    // A device code may be entered until it expires: the page waits as long.
    const wait = st.flow.code && st.flow.expires ? Math.max(GIVE_UP_MS, st.flow.expires - Date.now()) : GIVE_UP_MS;
    st.timers.giveUp = setTimeout(() => giveUp(seq), wait);
    schedulePoll(seq);
  }

  function schedulePoll(seq) {
    clearTimer("poll");
    st.timers.poll = setTimeout(() => poll(seq), st.stream && st.stream.live ? SAFETY_POLL_MS : POLL_MS);
  }

  // ---- the event stream ---------------------------------------------------

  // openStream follows the provider's events (GET .../events, Server-Sent
  // Events read with fetch, which can send the session token): each event
  // makes the pane read the status once, instead of polling it. Without a
  // stream (an old server, a proxy that buffers) the pane polls as before.
  function openStream() {
    closeStream();
    if (!st.provider || typeof AbortController !== "function" || typeof TextDecoder !== "function") return;
    const provider = st.provider;
    const stream = { ctl: new AbortController(), live: false, provider };
    st.stream = stream;
    const headers = { Accept: "text/event-stream" };
    if (config.token) headers.Authorization = `Bearer ${config.token}`;
    (async () => {
      try {
        const res = await fetch(providerPath("events"), {
          headers,
          signal: stream.ctl.signal,
          cache: "no-store",
          credentials: "same-origin",
        });
        if (!res.ok || !res.body || typeof res.body.getReader !== "function") {
          // A server without the route (or that refuses it) will not have
          // it in five seconds either.
          stream.final = res.status >= 400 && res.status < 500;
          return;
        }
        stream.live = true;
        if (st.flow) schedulePoll(st.seq); // now at the slow pace
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done || st.stream !== stream) break;
          buf += decoder.decode(value, { stream: true });
          for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (/^event: (flow|connection|dropped)$/m.test(block)) onStreamEvent();
          }
        }
      } catch (_) {
        /* aborted, or no stream: polling carries on */
      }
      stream.live = false;
      if (st.stream !== stream) return;
      st.stream = null;
      if (st.flow) schedulePoll(st.seq);
      if (stream.final) return;
      // Try again later: a restarted server, a dropped slow client.
      clearTimer("stream");
      st.timers.stream = setTimeout(() => {
        st.timers.stream = 0;
        if (st.provider === provider && !st.stream) openStream();
      }, STREAM_RETRY_MS);
    })();
  }

  function closeStream() {
    clearTimer("stream");
    if (st.stream) {
      st.stream.ctl.abort();
      st.stream = null;
    }
  }

  // onStreamEvent reads the status once: while a sign-in is watched, as its
  // poll would; otherwise to show a change made elsewhere.
  function onStreamEvent() {
    const seq = st.seq;
    if (st.flow) {
      clearTimer("poll");
      poll(seq);
    } else if (st.mode === "idle" && !st.busy) {
      loadStatus(seq);
    }
  }

  async function poll(seq) {
    st.timers.poll = 0;
    if (seq !== st.seq || !st.flow) return;
    let s;
    try {
      s = await request("GET", providerPath("status"));
    } catch (err) {
      if (seq !== st.seq || !st.flow) return;
      if (err.status === 0 || err.status >= 500) {
        schedulePoll(seq); // a hiccup: keep waiting until the give-up time
        return;
      }
      failFlow(err.message, seq);
      return;
    }
    if (seq !== st.seq || !st.flow) return;
    st.status = s;
    handleStatus(s, seq);
  }

  function handleStatus(s, seq) {
    const watched = st.flow;
    if (!watched) return;
    const flow = (s && s.flow) || null;
    const ours = flow && (watched.id === null || flow.id === watched.id);
    if (ours && flow.state === "connected") return finishConnected(s);
    if (ours && flow.state === "error") return failFlow(flow.detail || TEXT.flowFailed, seq);
    if (ours && flow.state === "pending") return schedulePoll(seq);
    // Our flow is gone (or idle): did it leave a new sign-in behind?
    if (signedIn(s) && (!watched.wasSignedIn || tokenMark(s) !== watched.tokenMark)) {
      return finishConnected(s);
    }
    if (flow && flow.state === "pending" && flow.id) {
      // Replaced by a newer sign-in for the same provider: follow that one.
      watched.id = flow.id;
      watched.key = `${st.provider}\n${flow.id}`;
      return schedulePoll(seq);
    }
    stopWatching();
    render("idle");
    showError(TEXT.flowEnded);
  }

  function finishConnected(s) {
    const key = st.flow ? st.flow.key : `local-${++st.localFlows}`;
    const flowId = st.flow ? st.flow.id : null;
    stopWatching();
    // The flow said connected: show it even if the rest of the body lags behind.
    st.status = Object.assign({}, s, { supported: true, connected: true, auth: "oauth", reauth_required: false });
    render("idle");
    if (st.announced.has(key)) return;
    st.announced.add(key);
    const note = TEXT.done(displayName());
    setStatus(note, "announce"); // the state line shows it; this tells a screen reader
    clearLater(note, NOTE_CLEAR_MS);
    document.dispatchEvent(
      new CustomEvent("memconnect:connected", {
        detail: { provider: st.provider, profile: config.profile, flowId },
      }),
    );
  }

  function failFlow(message, seq) {
    if (seq !== st.seq) return;
    stopWatching();
    render("idle");
    showError(message || TEXT.flowFailed);
  }

  function giveUp(seq) {
    st.timers.giveUp = 0;
    if (seq !== st.seq || !st.flow) return;
    clearTimer("poll");
    st.flow = null;
    render("gaveup");
    setStatus(TEXT.gaveUp, "warn");
  }

  // handoff is the callback page's word that a sign-in ended: look at the
  // status now instead of at the next poll. Only messages of this origin
  // count; they carry no secret, and the status says what happened.
  function handoff(data) {
    if (!data || data.type !== "memconnect:signin" || !st.flow) return;
    const seq = st.seq;
    clearTimer("poll");
    poll(seq);
  }

  function listenForHandoff() {
    try {
      const channel = new BroadcastChannel("memconnect");
      channel.addEventListener("message", (e) => handoff(e.data));
    } catch (_) {
      /* no BroadcastChannel: the status poll still finds the outcome */
    }
    window.addEventListener("message", (e) => {
      if (e.origin === window.location.origin) handoff(e.data);
    });
  }

  // ---- actions ----------------------------------------------------------

  async function cancelQuietly() {
    try {
      await request("POST", providerPath("cancel"));
      return null;
    } catch (err) {
      // Nothing to cancel any more is fine.
      return err.status === 404 || err.status === 409 ? null : err;
    }
  }

  async function stopWaiting() {
    const seq = ++st.seq;
    stopWatching();
    setStatus("");
    render("idle");
    const err = await cancelQuietly();
    if (seq !== st.seq) return;
    if (err) showFailure(err);
    await loadStatus(seq);
  }

  async function retry() {
    if (st.busy) return;
    ++st.seq;
    stopWatching();
    await cancelQuietly(); // the old sign-in may still be open on the server
    await startConnect();
  }

  // Disconnect asks once: the person confirms, or keeps the connection.
  function askDisconnect() {
    if (st.busy || !st.provider) return;
    st.confirming = true;
    setStatus("");
    render("idle");
    ui.confirmNo.focus();
  }

  async function disconnect() {
    if (st.busy || !st.provider) return;
    const seq = ++st.seq;
    stopWatching();
    st.busy = true;
    st.confirming = false;
    ui.confirmYes.setAttribute("aria-disabled", "true");
    setStatus(TEXT.disconnecting);
    let result = null;
    try {
      result = await request("DELETE", providerPath("connection"));
    } catch (err) {
      if (seq === st.seq) showFailure(err);
      return;
    } finally {
      st.busy = false;
      ui.confirmYes.removeAttribute("aria-disabled");
    }
    if (seq !== st.seq) return;
    // What the server could not do (it revokes nothing) stays said.
    if (result && typeof result.message === "string" && result.message) {
      setStatus(result.message);
      await loadStatus(seq);
      setStatus(result.message);
      return;
    }
    const note = TEXT.disconnected(displayName());
    setStatus(note);
    clearLater(note, NOTE_CLEAR_MS);
    await loadStatus(seq);
  }

  // ---- API keys ---------------------------------------------------------

  function openKey() {
    st.keyOpen = true;
    setStatus("");
    render("idle");
    ui.keyInput.focus();
  }

  function closeKey() {
    st.keyOpen = false;
    ui.keyInput.value = "";
    render("idle");
  }

  // saveKey sends the key to connect; the answer is the new status. The
  // key leaves the field once stored; a refused one stays to be corrected.
  async function saveKey() {
    if (st.busy || !st.provider) return;
    const key = ui.keyInput.value.trim();
    if (!key) {
      showError(TEXT.keyEmpty);
      ui.keyInput.focus();
      return;
    }
    const seq = ++st.seq;
    stopWatching();
    st.busy = true;
    ui.keySave.setAttribute("aria-disabled", "true");
    setStatus(TEXT.keyChecking, "waiting");
    let s;
    try {
      s = await request("POST", providerPath("connect"), { method: "apikey", api_key: key });
    } catch (err) {
      if (seq === st.seq) {
        showFailure(err);
        ui.keyInput.focus();
      }
      return;
    } finally {
      st.busy = false;
      ui.keySave.removeAttribute("aria-disabled");
    }
    if (seq !== st.seq) return;
    st.keyOpen = false;
    ui.keyInput.value = "";
    st.status = s;
    render("idle");
    const note = TEXT.keySaved(displayName());
    setStatus(note, "announce"); // the state line shows it; this tells a screen reader
    clearLater(note, NOTE_CLEAR_MS);
    document.dispatchEvent(
      new CustomEvent("memconnect:connected", { detail: { provider: st.provider, profile: config.profile, flowId: null } }),
    );
  }

  function selectProvider(name, keepMessage = false) {
    const seq = ++st.seq;
    stopWatching();
    st.keyOpen = false;
    st.confirming = false;
    ui.keyInput.value = "";
    if (!keepMessage) setStatus("");
    st.provider = name;
    st.status = null;
    render("idle");
    openStream();
    return loadStatus(seq);
  }

  // ---- start ------------------------------------------------------------

  async function start() {
    listenForHandoff();
    ui.select.addEventListener("change", () => selectProvider(ui.select.value));
    ui.connect.addEventListener("click", () => (keyOnly() ? openKey() : startConnect()));
    ui.key.addEventListener("click", () => openKey());
    ui.keySave.addEventListener("click", () => saveKey());
    ui.keyCancel.addEventListener("click", () => closeKey());
    ui.keyInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") saveKey();
      if (e.key === "Escape") closeKey();
    });
    ui.device.addEventListener("click", () => startConnect("device"));
    ui.retry.addEventListener("click", () => retry());
    ui.stop.addEventListener("click", () => stopWaiting());
    ui.copyCode.addEventListener("click", () => copyCode());
    ui.disconnect.addEventListener("click", () => askDisconnect());
    ui.confirmYes.addEventListener("click", () => disconnect());
    ui.confirmNo.addEventListener("click", () => {
      st.confirming = false;
      render("idle");
      ui.disconnect.focus();
    });
    ui.profile.textContent = TEXT.profile(config.profile);
    ui.dismiss.addEventListener("click", () => {
      setStatus("");
      ui.select.focus();
    });

    const seq = ++st.seq;
    let providers = [];
    let failed = false;
    try {
      const data = await request("GET", `${config.api}/providers`);
      providers = data && Array.isArray(data.providers) ? data.providers : [];
    } catch (err) {
      if (seq === st.seq) showFailure(err);
      failed = true;
    }
    if (seq !== st.seq) return;
    for (const p of providers) {
      if (!p || typeof p.name !== "string" || p.name === "" || st.names.has(p.name)) continue;
      const label = typeof p.display_name === "string" && p.display_name ? p.display_name : p.name;
      st.names.set(p.name, label);
      st.methods.set(p.name, Array.isArray(p.auth_methods) ? p.auth_methods : []);
      const option = document.createElement("option");
      option.value = p.name;
      option.textContent = label;
      ui.select.appendChild(option);
    }
    let wanted = config.provider;
    if (wanted === null) wanted = providers.length && st.names.size ? st.names.keys().next().value : "";
    ui.select.value = st.names.has(wanted) ? wanted : "";
    // Selecting the provider must not wipe why the list could not load.
    await selectProvider(ui.select.value, failed);
  }

  start();
})();
