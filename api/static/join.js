/* Join page client: the browser side of docs/signalling.md.
 *
 * Reads its settings from <script id=join-config type="application/json"> ({number, role,
 * token, lang, ws_path, texts}, plus room_id on an organiser's page). #status's text is exactly
 * the raw state ("waiting", "joined", "left" or empty); the human text is in #status-text,
 * errors in #message.
 * Moderation (organisers only, once joined): each #participants li (data-id, data-kind,
 * data-role, data-state, data-muted) gets button[data-action] = admit | refuse | mute |
 * unmute | ask-unmute | remove as they apply, and #moderation holds button#admit-all and
 * button#mute-all; they call the REST routes with the link token (README "Moderation").
 * Test hooks: window.gatewayMeasure() (the remote audio's spectrum and level) and
 * window.gatewayState ({status, participant_id, last_error}).
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("join-config").textContent);
  var TEXTS = config.texts || {};
  var FINAL_CODES = {
    4400: "bad_message",
    4401: "not_authenticated",
    4403: "invalid_link",
    4409: "room_closed",
    1009: "too_big",
    4429: "too_many",
    4410: "removed",
    4411: "ended",
    4412: "refused",
    4503: "unavailable"
  };
  var FINAL = {};
  Object.keys(FINAL_CODES).forEach(function (k) { FINAL[FINAL_CODES[k]] = true; });
  var BACKOFF = [1, 2, 4, 8, 10];  // seconds; then every 10 s
  var PING_MS = 15000;
  var ICE_GATHER_MS = 3000;
  var FFT_SIZE = 8192;

  function $(id) { return document.getElementById(id); }
  var el = {
    form: $("join-form"), name: $("name"), join: $("join"),
    status: $("status"), statusText: $("status-text"), message: $("message"),
    mic: $("mic"), mute: $("mute"), camera: $("camera"), leave: $("leave"),
    local: $("local"), participants: $("participants"), remoteAudio: $("remote-audio"),
    langEn: $("lang-en"), langFr: $("lang-fr"), role: $("role"),
    moderation: $("moderation"), admitAll: $("admit-all"), muteAll: $("mute-all")
  };
  // #status carries the raw state word; #status-text says it in words for people.
  el.status.setAttribute("aria-hidden", "true");
  el.statusText.setAttribute("aria-live", "polite");

  var spectator = config.role === "spectator";
  // The moderation controls: an organiser's page, which alone carries the room id.
  var organiser = config.role === "organiser" && typeof config.room_id === "string" &&
    config.room_id !== "";
  var state = window.gatewayState = { status: "", participant_id: null, last_error: null };

  // -- language ---------------------------------------------------------------------------
  function storageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function storageSet(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ }
  }
  function browserLang() {
    var langs = navigator.languages && navigator.languages.length
      ? navigator.languages : [navigator.language || ""];
    for (var i = 0; i < langs.length; i++) {
      var primary = String(langs[i]).toLowerCase().split("-")[0];
      if (TEXTS[primary]) { return primary; }
    }
    return null;
  }
  var lang = storageGet("gateway.lang");
  if (!TEXTS[lang]) { lang = browserLang() || (TEXTS[config.lang] ? config.lang : "en"); }

  function t(key) {
    var table = TEXTS[lang] || {};
    if (Object.prototype.hasOwnProperty.call(table, key)) { return table[key]; }
    var en = TEXTS.en || {};
    return Object.prototype.hasOwnProperty.call(en, key) ? en[key] : key;
  }

  var shown = { statusKey: null, messageKey: null, messageFallback: "" };

  function applyLang() {
    document.documentElement.lang = lang;
    var nodes = document.querySelectorAll("[data-i18n]");
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = t(nodes[i].getAttribute("data-i18n"));
    }
    var strong = el.role && el.role.querySelector("strong");
    if (strong) { strong.textContent = t("role_" + config.role); }
    el.langEn.setAttribute("aria-pressed", String(lang === "en"));
    el.langFr.setAttribute("aria-pressed", String(lang === "fr"));
    renderStatusText();
    renderMessage();
    renderParticipants();
  }
  function setLang(next) {
    if (!TEXTS[next]) { return; }
    lang = next;
    storageSet("gateway.lang", next);
    applyLang();
  }
  el.langEn.addEventListener("click", function () { setLang("en"); });
  el.langFr.addEventListener("click", function () { setLang("fr"); });

  // -- status and messages ----------------------------------------------------------------
  function setStatus(word, textKey) {
    state.status = word;
    el.status.textContent = (word === "waiting" || word === "joined" || word === "left") ? word : "";
    shown.statusKey = textKey || null;
    renderStatusText();
  }
  function renderStatusText() {
    el.statusText.textContent = shown.statusKey ? t("status_" + shown.statusKey) : "";
  }
  function showError(code, serverText) {
    state.last_error = code;
    shown.messageKey = code;
    shown.messageFallback = serverText || "";
    shown.messageDetail = "";
    renderMessage();
  }
  function clearMessage() {
    shown.messageKey = null;
    shown.messageFallback = "";
    shown.messageDetail = "";
    renderMessage();
  }
  function renderMessage() {
    var key = shown.messageKey;
    if (!key) { el.message.textContent = ""; return; }
    var text = t("err_" + key);
    text = text === "err_" + key ? (shown.messageFallback || key) : text;
    el.message.textContent = shown.messageDetail ? text + " " + shown.messageDetail : text;
  }

  // -- participants -----------------------------------------------------------------------
  // Rendered in place, one li per participant id, so that a button survives the re-render
  // of every `participants` message (only its own entry's buttons are rebuilt, and only when
  // what they say changes); clicks are handled once, on the list (event delegation).
  var participants = [];
  var pending = {};  // "id action" -> true while its request is on the way

  function fill(template, name) { return template.split("{name}").join(name); }

  function actionsFor(p) {
    if (!organiser || !session || !session.welcomed) { return []; }
    var own = p.id === state.participant_id;
    if (own) { return [muted ? "unmute" : "mute"]; }  // one's own microphone, nothing else
    if (p.state === "waiting") { return ["admit", "refuse"]; }
    var actions = [p.muted ? "unmute" : "mute"];
    if (p.muted && p.role !== "spectator") { actions.push("ask-unmute"); }
    actions.push("remove");
    return actions;
  }

  function setText(parent, className, text) {
    var node = parent.querySelector(":scope > ." + className);
    if (text === null) {
      if (node) { parent.removeChild(node); }
      return null;
    }
    if (!node) {
      node = document.createElement("span");
      node.className = className;
      parent.appendChild(node);
    }
    if (node.textContent !== text) { node.textContent = text; }
    return node;
  }

  function renderActions(li, p) {
    var actions = actionsFor(p);
    var name = String(p.display_name || "");
    var signature = JSON.stringify([lang, name, actions, actions.map(function (a) {
      return !!pending[p.id + " " + a];
    })]);
    var box = li.querySelector(":scope > .actions");
    if (!actions.length) {
      if (box) { li.removeChild(box); }
      return;
    }
    if (box && box.getAttribute("data-signature") === signature) { return; }
    var focused = box && box.contains(document.activeElement)
      ? document.activeElement.getAttribute("data-action") : null;
    if (!box) {
      box = document.createElement("span");
      box.className = "actions";
      li.appendChild(box);
    }
    while (box.firstChild) { box.removeChild(box.firstChild); }
    box.setAttribute("data-signature", signature);
    actions.forEach(function (action) {
      var key = "mod_" + action.replace("-", "_");
      var button = document.createElement("button");
      button.type = "button";
      button.setAttribute("data-action", action);
      button.textContent = t(key);
      button.setAttribute("aria-label", fill(t(key + "_aria"), name));
      if (pending[p.id + " " + action]) {
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
      }
      box.appendChild(button);
    });
    if (focused) {  // keep the keyboard where it was: the same action, or this entry's first
      var again = box.querySelector('button[data-action="' + focused + '"]:not([disabled])') ||
        box.querySelector("button:not([disabled])");
      if (again) { again.focus(); }
    }
  }

  function renderParticipants() {
    var list = el.participants;
    var existing = {};
    Array.prototype.forEach.call(list.children, function (li) {
      existing[li.getAttribute("data-id")] = li;
    });
    participants.forEach(function (p, index) {
      var id = String(p.id);
      var li = existing[id];
      delete existing[id];
      if (!li) {
        li = document.createElement("li");
        li.setAttribute("data-id", id);
      }
      li.setAttribute("data-kind", String(p.kind));
      li.setAttribute("data-role", String(p.role));
      li.setAttribute("data-state", String(p.state));
      li.setAttribute("data-muted", String(!!p.muted));
      li.setAttribute("data-talking", String(!!p.talking));
      li.className = p.talking ? "talking" : "";
      setText(li, "name", String(p.display_name || ""));
      var details = [t("kind_" + p.kind), t("role_" + p.role)];
      if (p.id === state.participant_id) { details.unshift(t("you")); }
      if (p.state === "waiting") { details.push(t("in_waiting_room")); }
      if (p.muted) { details.push(t("muted")); }
      setText(li, "details", " (" + details.join(", ") + ")");
      var marker = setText(li, "talking-marker", p.talking ? " — " + t("talking") : null);
      var box = li.querySelector(":scope > .actions");
      if (marker && box) { li.insertBefore(marker, box); }  // the marker before the buttons
      renderActions(li, p);
      if (list.children[index] !== li) { list.insertBefore(li, list.children[index] || null); }
    });
    Object.keys(existing).forEach(function (id) { list.removeChild(existing[id]); });
    renderModeration();
  }

  function renderModeration() {
    if (!el.moderation) { return; }
    var on = organiser && !!session && session.welcomed;
    el.moderation.hidden = !on;
    var waiting = participants.some(function (p) { return p.state === "waiting"; });
    if (el.admitAll) { el.admitAll.disabled = !on || !waiting || !!pending["* admit-all"]; }
    if (el.muteAll) { el.muteAll.disabled = !on || !!pending["* mute-all"]; }
  }

  // -- moderation: the organiser's REST calls ---------------------------------------------
  function roomPath(suffix) {
    return "/api/rooms/" + encodeURIComponent(config.room_id) + suffix;
  }
  function participantPath(id, suffix) {
    return roomPath("/participants/" + encodeURIComponent(id) + suffix);
  }
  function moderate(key, method, path, body) {
    if (pending[key]) { return; }
    pending[key] = true;
    renderParticipants();
    var headers = { "Authorization": "Bearer " + config.token };
    var init = { method: method, headers: headers, cache: "no-store", credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    fetch(path, init).then(function (response) {
      if (response.ok) { return null; }
      return response.json().catch(function () { return null; }).then(function (data) {
        var error = data && data.error && typeof data.error === "object" ? data.error : {};
        return {
          code: typeof error.code === "string" ? error.code : "http_" + response.status,
          message: typeof error.message === "string" ? error.message : ""
        };
      });
    }, function () {
      return { code: "network", message: "" };
    }).then(function (failure) {
      delete pending[key];
      if (failure) {
        showError("moderation_failed");
        state.last_error = failure.code;  // the REST code, for whoever looks
        shown.messageDetail = failure.message ? "(" + failure.message + ")" : "";
        renderMessage();
      } else if (shown.messageKey === "moderation_failed") {
        clearMessage();
      }
      renderParticipants();
    });
  }

  function onAction(id, action) {
    if (id === state.participant_id) {  // one's own entry: the page's own mute
      if (action === "mute" || action === "unmute") { setMuted(action === "mute"); }
      return;
    }
    var key = id + " " + action;
    switch (action) {
      case "admit": moderate(key, "POST", participantPath(id, "/admit")); break;
      case "refuse": moderate(key, "POST", participantPath(id, "/refuse")); break;
      case "mute": moderate(key, "POST", participantPath(id, "/mute"), { muted: true }); break;
      case "unmute": moderate(key, "POST", participantPath(id, "/mute"), { muted: false }); break;
      case "ask-unmute": moderate(key, "POST", participantPath(id, "/ask-unmute")); break;
      case "remove": moderate(key, "DELETE", participantPath(id, "")); break;
      default: break;
    }
  }

  if (organiser) {
    el.participants.addEventListener("click", function (event) {
      var button = event.target && event.target.closest
        ? event.target.closest("button[data-action]") : null;
      if (!button || button.disabled || !el.participants.contains(button)) { return; }
      var li = button.closest("li[data-id]");
      if (li) { onAction(li.getAttribute("data-id"), button.getAttribute("data-action")); }
    });
    if (el.admitAll) {
      el.admitAll.addEventListener("click", function () {
        moderate("* admit-all", "POST", roomPath("/admit-all"));
      });
    }
    if (el.muteAll) {
      el.muteAll.addEventListener("click", function () {
        moderate("* mute-all", "POST", roomPath("/mute-all"), { muted: true });
      });
    }
  }

  // -- microphone and camera --------------------------------------------------------------
  var micStream = null;
  var muted = false;
  var cameraStream = null;

  function micTrack() {
    return micStream ? micStream.getAudioTracks()[0] || null : null;
  }
  function micErrorCode(err) {
    var name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
      return "mic_blocked";
    }
    return "mic_missing";  // NotFoundError, NotReadableError, OverconstrainedError, ...
  }
  function openMic() {
    var deviceId = el.mic.value;
    var audio = deviceId ? { deviceId: { exact: deviceId } } : true;
    return navigator.mediaDevices.getUserMedia({ audio: audio, video: false }).catch(function (err) {
      if (deviceId && err && err.name === "OverconstrainedError") {  // the chosen mic is gone
        return navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      }
      throw err;
    });
  }
  function stopStream(stream) {
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
  }
  function releaseMic() {
    stopStream(micStream);
    micStream = null;
  }
  function fillMics() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
      return Promise.resolve();
    }
    return navigator.mediaDevices.enumerateDevices().then(function (devices) {
      var current = el.mic.value;
      var track = micTrack();
      var using = track && track.getSettings ? track.getSettings().deviceId : null;
      while (el.mic.options.length > 1) { el.mic.remove(1); }
      var n = 0;
      devices.forEach(function (d) {
        if (d.kind !== "audioinput" || !d.deviceId || d.deviceId === "default") { return; }
        n += 1;
        var opt = document.createElement("option");
        opt.value = d.deviceId;
        opt.textContent = d.label || (t("mic_label") + " " + n);
        el.mic.appendChild(opt);
      });
      var wanted = current || using || "";
      for (var i = 0; i < el.mic.options.length; i++) {
        if (el.mic.options[i].value === wanted) { el.mic.selectedIndex = i; }
      }
    }).catch(function () { /* leave the default entry */ });
  }
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener("devicechange", function () {
      if (micStream) { fillMics(); }
    });
  }

  el.mic.addEventListener("change", function () {
    if (!micStream) { return; }  // used at the next join
    openMic().then(function (stream) {
      var track = stream.getAudioTracks()[0];
      track.enabled = !muted;
      var old = micStream;
      micStream = stream;
      var sender = session && session.sender;
      var done = sender ? sender.replaceTrack(track) : Promise.resolve();
      return done.then(function () { stopStream(old); });
    }).catch(function (err) { showError(micErrorCode(err)); });
  });

  function setMuted(value) {
    muted = value;
    var track = micTrack();
    if (track) { track.enabled = !muted; }
    el.mute.setAttribute("aria-pressed", String(muted));
    if (session && session.welcomed) { session.send({ type: "mute", muted: muted }); }
    renderParticipants();  // an organiser's own entry shows the matching button
  }
  el.mute.addEventListener("click", function () { setMuted(!muted); });

  el.camera.addEventListener("click", function () {
    if (cameraStream) {
      stopStream(cameraStream);
      cameraStream = null;
      el.local.srcObject = null;
      el.local.hidden = true;
      el.camera.setAttribute("aria-pressed", "false");
      return;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError("camera_missing");
      return;
    }
    el.camera.disabled = true;
    navigator.mediaDevices.getUserMedia({ audio: false, video: true }).then(function (stream) {
      cameraStream = stream;  // preview only: never added to the peer connection
      el.local.muted = true;
      el.local.srcObject = stream;
      el.local.hidden = false;
      var played = el.local.play();
      if (played && played.catch) { played.catch(function () {}); }
      el.camera.setAttribute("aria-pressed", "true");
    }).catch(function (err) {
      var name = err && err.name;
      showError(name === "NotAllowedError" || name === "SecurityError"
        ? "camera_blocked" : "camera_missing");
    }).then(function () { el.camera.disabled = false; });
  });

  // -- remote audio and its measurement hook ----------------------------------------------
  var audioCtx = null;
  var analyser = null;
  var analysedSource = null;

  function ensureAudioContext() {  // called from the Join click (a user gesture)
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audioCtx && Ctx) {
      try { audioCtx = new Ctx(); } catch (e) { audioCtx = null; }
    }
    if (audioCtx && audioCtx.state === "suspended") { audioCtx.resume().catch(function () {}); }
  }
  function playRemote(stream) {
    el.remoteAudio.srcObject = stream;
    var played = el.remoteAudio.play();
    if (played && played.catch) { played.catch(function () {}); }
    if (!audioCtx) { return; }
    if (audioCtx.state === "suspended") { audioCtx.resume().catch(function () {}); }
    if (analysedSource) { analysedSource.disconnect(); analysedSource = null; }
    if (!analyser) {
      analyser = audioCtx.createAnalyser();
      analyser.fftSize = FFT_SIZE;
      analyser.smoothingTimeConstant = 0;
      // Pulled through a silent gain so it runs in every browser; the <audio> plays the sound.
      var silent = audioCtx.createGain();
      silent.gain.value = 0;
      analyser.connect(silent);
      silent.connect(audioCtx.destination);
    }
    try {
      analysedSource = audioCtx.createMediaStreamSource(stream);
      analysedSource.connect(analyser);
    } catch (e) { analysedSource = null; }
  }
  function stopRemote() {
    if (analysedSource) { analysedSource.disconnect(); analysedSource = null; }
    el.remoteAudio.srcObject = null;
  }

  window.gatewayMeasure = function () {
    if (!analyser || !analysedSource) { return { peak_hz: 0, level_db: -200, rms: 0 }; }
    var freq = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(freq);
    var best = 0;
    var bestDb = -Infinity;
    for (var i = 1; i < freq.length; i++) {  // bin 0 is DC
      if (freq[i] > bestDb) { bestDb = freq[i]; best = i; }
    }
    var time = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(time);
    var sum = 0;
    for (var j = 0; j < time.length; j++) { sum += time[j] * time[j]; }
    return {
      peak_hz: best * audioCtx.sampleRate / analyser.fftSize,
      level_db: isFinite(bestDb) ? bestDb : -200,
      rms: Math.sqrt(sum / time.length)
    };
  };

  // -- the session: one socket and one peer connection ------------------------------------
  var session = null;       // the current attempt
  var displayName = "";
  var attempt = 0;          // reconnections since the last success
  var retryTimer = null;

  function wsUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + config.ws_path;
  }

  function waitForIce(pc) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      var timer = setTimeout(finish, ICE_GATHER_MS);
      function check() { if (pc.iceGatheringState === "complete") { finish(); } }
      function finish() {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function Session() {
    var self = this;
    this.ws = new WebSocket(wsUrl());
    this.pc = null;
    this.sender = null;
    this.welcomed = false;
    this.ended = false;
    this.restarting = false;  // told the gateway restarts: say so while reconnecting
    this.pinger = null;
    this.ws.onopen = function () {
      if (!self.current()) { return; }
      self.send({ type: "join", token: config.token, name: displayName });
      self.pinger = setInterval(function () { self.send({ type: "ping" }); }, PING_MS);
    };
    this.ws.onmessage = function (event) {
      if (!self.current()) { return; }
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg && typeof msg === "object") { self.handle(msg); }
    };
    this.ws.onclose = function (event) {
      if (!self.current()) { return; }
      var code = self.finalCode || FINAL_CODES[event.code];
      if (code) {
        self.stop();
        finish(code, self.finalText);
      } else {
        lost(self);
      }
    };
    this.ws.onerror = function () { /* onclose follows */ };
  }
  Session.prototype.current = function () { return session === this && !this.ended; };
  Session.prototype.send = function (msg) {
    if (this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(msg)); }
  };
  Session.prototype.stop = function () {
    this.ended = true;
    clearInterval(this.pinger);
    if (this.pc) {
      try { this.pc.close(); } catch (e) { /* already closed */ }
      this.pc = null;
    }
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) {
      try { this.ws.close(1000); } catch (e) { /* closing */ }
    }
    stopRemote();
  };
  Session.prototype.handle = function (msg) {
    var self = this;
    switch (msg.type) {
      case "welcome":
        this.welcomed = true;
        state.participant_id = msg.participant_id || null;
        clearMessage();
        el.leave.disabled = false;
        el.mute.disabled = spectator || !micTrack();
        if (muted && micTrack()) { this.send({ type: "mute", muted: true }); }
        renderParticipants();
        Promise.resolve(msg).then(function (welcome) { return self.connect(welcome); })
          .catch(function () { if (self.current()) { lost(self); } });
        break;
      case "answer":
        if (this.pc && typeof msg.sdp === "string") {
          this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp }).catch(function () {
            if (self.current()) { lost(self); }
          });
        }
        break;
      case "candidate":
        if (this.pc && typeof msg.candidate === "string") {
          this.pc.addIceCandidate(msg.candidate ? {
            candidate: msg.candidate, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex
          } : null).catch(function () {});
        }
        break;
      case "state":
        if (msg.state === "joined" || msg.state === "waiting") {
          attempt = 0;
          setStatus(msg.state, msg.state);
        }
        break;
      case "moderated":  // an organiser muted or unmuted us: follow, and say so
        if (msg.action === "muted" || msg.action === "unmuted") {
          muted = msg.action === "muted";
          var track = micTrack();
          if (track) { track.enabled = !muted; }
          el.mute.setAttribute("aria-pressed", String(muted));
          showError(msg.action === "muted" ? "muted_by_organiser" : "unmuted_by_organiser");
          renderParticipants();
        } else if (msg.action === "ask_unmute") {  // a request: the person decides
          showError("asked_to_unmute");
          el.mute.focus();
        }
        break;
      case "participants":
        participants = Array.isArray(msg.participants) ? msg.participants : [];
        renderParticipants();
        break;
      case "draining":  // the gateway restarts soon; the page will rejoin by itself
        showError("draining");
        break;
      case "error":
        if (msg.code === "restarting") { this.restarting = true; }
        this.finalCode = typeof msg.code === "string" ? msg.code : "bad_message";
        this.finalText = typeof msg.message === "string" ? msg.message : "";
        if (!FINAL[this.finalCode]) { this.finalCode = null; }  // unknown: wait for the close
        break;
      default:  // pong, and anything newer than this page
        break;
    }
  };
  Session.prototype.connect = function (welcome) {
    var self = this;
    var pc = new RTCPeerConnection({
      iceServers: Array.isArray(welcome.ice_servers) ? welcome.ice_servers : []
    });
    this.pc = pc;
    pc.ontrack = function (event) {
      if (!self.current() || event.track.kind !== "audio") { return; }
      playRemote(event.streams && event.streams[0] ? event.streams[0] : new MediaStream([event.track]));
    };
    pc.onconnectionstatechange = function () {
      if (self.current() && pc.connectionState === "failed") { lost(self); }
    };
    var track = micTrack();
    if (track && welcome.role !== "spectator" && !spectator) {
      this.sender = pc.addTransceiver(track, { direction: "sendrecv", streams: [micStream] }).sender;
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    return pc.createOffer().then(function (offer) {
      return pc.setLocalDescription(offer);
    }).then(function () {
      return waitForIce(pc);
    }).then(function () {
      if (self.current()) { self.send({ type: "offer", sdp: pc.localDescription.sdp }); }
    });
  };

  function lost(s) {
    s.stop();
    if (session !== s) { return; }
    session = null;
    state.participant_id = null;
    participants = [];
    renderParticipants();
    el.mute.disabled = true;
    showError(s.restarting ? "restarting" : "connection_lost");
    setStatus("reconnecting", "reconnecting");
    var delay = BACKOFF[Math.min(attempt, BACKOFF.length - 1)];
    attempt += 1;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(start, delay * 1000);
  }

  function finish(code, serverText) {  // a final end: no reconnection
    session = null;
    clearTimeout(retryTimer);
    retryTimer = null;
    state.participant_id = null;
    participants = [];
    renderParticipants();
    releaseMic();
    resetControls();
    if (code === "left") {
      clearMessage();
      setStatus("left", "left");
    } else {
      showError(code, serverText);
      setStatus("ended", null);
    }
  }

  function resetControls() {
    el.name.disabled = false;
    el.join.disabled = false;
    el.mic.disabled = spectator;
    el.mute.disabled = true;
    el.leave.disabled = true;
  }

  function start() {
    retryTimer = null;
    if (session) { return; }
    if (state.status !== "reconnecting") { setStatus("connecting", "connecting"); }
    session = new Session();
  }

  el.leave.addEventListener("click", function () {
    var s = session;
    if (s) {
      s.send({ type: "leave" });
      s.stop();
    }
    finish("left");
  });
  window.addEventListener("pagehide", function () {
    if (session) { session.send({ type: "leave" }); session.stop(); session = null; }
  });

  el.form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (session || retryTimer) { return; }
    var name = el.name.value.trim();
    if (name.length < 1 || name.length > 100) {
      showError("name_missing");
      el.name.focus();
      return;
    }
    if (!window.RTCPeerConnection || !window.WebSocket ||
        (!spectator && !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia))) {
      showError("unsupported");
      return;
    }
    displayName = name;
    storageSet("gateway.name", name);
    clearMessage();
    ensureAudioContext();
    el.name.disabled = true;
    el.join.disabled = true;
    attempt = 0;
    var ready = spectator ? Promise.resolve(null) : openMic();
    setStatus("connecting", "connecting");
    ready.then(function (stream) {
      if (stream) {
        releaseMic();
        micStream = stream;
        var track = micTrack();
        if (track) { track.enabled = !muted; }
        fillMics();
      }
      start();
    }).catch(function (err) {
      resetControls();
      setStatus("", null);
      showError(micErrorCode(err));
    });
  });

  var savedName = storageGet("gateway.name");
  if (savedName && !el.name.value) { el.name.value = savedName; }
  applyLang();
})();
