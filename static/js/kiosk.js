/* The kiosk (templates/kiosk/page.html): an organizer's phone paired to one venue reads residents' personal
   cards with its camera, or takes a typed card number, and counts people without a card.

   - The device and its day's events come from /api/v1/kiosk while online and are kept on the phone, so a
     kiosk prepared in the morning works all evening without signal.
   - Every scan goes into the outbox (static/js/outbox.js) before anything is shown, then to
     /api/v1/kiosk/batch. The answer is shown big: accepted, already checked in, or not accepted (an unknown
     or cancelled card). With no signal the kiosk cannot judge a card: it says the card is saved and will be
     checked when the signal returns. A card this kiosk already scanned for the event is known offline.
   - The camera reads with the browser's BarcodeDetector where it has one, otherwise with the vendored
     barcode-detector (zxing-cpp in WebAssembly, served by us), loaded on this page only.
   - The same card held in front of the camera counts once; the next card is read at once. */
(function () {
  "use strict";
  var App = window.DiemdanhApp;
  var Outbox = window.DiemdanhOutbox;
  var root = document.querySelector("[data-kiosk]");
  if (!root || !App) return;
  var text = root.dataset;
  var STORE = "diemdanh-kiosk";
  var CARD_PREFIX = "DIEMDANH:";
  var CARD_RE = /^[0-9A-HJKMNP-TV-Z]{10}$/; // 7 random and 3 signature characters (server/codes.py)
  var SAME_CARD_MS = 3000; // a card held in front of the camera is read many times a second
  var JUDGE_WAIT_MS = 3000; // longer than this without an answer: the kiosk says the card is saved
  var FRAME_MS = 120;
  var state = { device: null, events: [], eventId: null, loadedAt: null };
  var shown = null; // the outbox key whose answer the big result shows
  var lastRead = { number: "", at: 0 };
  var detector = null, scanning = false;

  function $(selector) { return root.querySelector(selector); }
  if (!App.usable) { // no IndexedDB (a private window): nothing could be kept, so nothing is taken
    $("[data-status]").textContent = text.unusable;
    return;
  }

  function clock(value) { return App.clock(value); }

  function day(value) {
    try {
      return new Date(value).toLocaleDateString("vi-VN", {
        day: "2-digit", month: "2-digit", year: "numeric", timeZone: text.tz || undefined,
      });
    } catch (e) {
      return new Date(value).toISOString().slice(0, 10);
    }
  }

  /* --- The device and its events ------------------------------------------------------------------- */

  function kept() {
    try { return JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { return null; }
  }

  function keep() {
    try {
      localStorage.setItem(STORE, JSON.stringify({
        device: state.device, events: state.events, eventId: state.eventId, loadedAt: state.loadedAt,
      }));
    } catch (e) { /* private mode: the kiosk works while this page stays open */ }
  }

  function forget() {
    try { localStorage.removeItem(STORE); } catch (e) { /* nothing kept */ }
  }

  function withTimeout(promise, ms) {
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () { reject(new Error("timeout")); }, ms);
      promise.then(function (v) { clearTimeout(timer); resolve(v); }, function (e) { clearTimeout(timer); reject(e); });
    });
  }

  function load() {
    var fetched = fetch(text.api, { credentials: "same-origin", headers: { Accept: "application/json" } });
    return withTimeout(fetched, 5000).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.status === 401 || response.status === 403) return unpaired(data);
        if (!response.ok) throw new Error("http " + response.status);
        var previous = kept();
        state.device = data.device;
        state.events = data.events || [];
        state.loadedAt = Date.now();
        state.eventId = previous && previous.eventId;
        start(App.fill(text.loaded, { time: clock(state.loadedAt), date: day(state.loadedAt) }));
        cacheForOffline();
      });
    }).catch(function () {
      var previous = kept();
      if (!previous || !previous.device) {
        status(text.neverLoaded);
        return;
      }
      state.device = previous.device;
      state.events = previous.events || [];
      state.loadedAt = previous.loadedAt;
      state.eventId = previous.eventId;
      start(App.fill(text.offlineLoaded, { time: clock(state.loadedAt), date: day(state.loadedAt) }));
    });
  }

  function unpaired(problem) {
    forget();
    stopCamera();
    $("[data-ready]").hidden = true;
    $("[data-unpaired]").hidden = false;
    if (problem && problem.title) $("[data-unpaired-text]").textContent = problem.title;
  }

  /* Ask the service worker to keep this page and the decoder, so the kiosk opens without signal. */
  function cacheForOffline() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.ready.then(function (registration) {
      if (registration.active) registration.active.postMessage({ type: "kiosk" });
    }).catch(function () { /* the page still works while open */ });
  }

  function status(message) { $("[data-status]").textContent = message; }

  function open(event, now) {
    return Date.parse(event.opens_at) <= now && now <= Date.parse(event.closes_at);
  }

  function start(message) {
    var now = Date.now();
    // Only what still matters today: an event already closed cannot take a scan.
    state.events = state.events.filter(function (event) { return Date.parse(event.closes_at) >= now; });
    if (!state.events.some(function (event) { return event.id === state.eventId; })) {
      var current = state.events.filter(function (event) { return open(event, now); })[0];
      state.eventId = (current || state.events[0] || {}).id || null;
    }
    keep();
    $("[data-unpaired]").hidden = true;
    $("[data-device-name]").textContent = state.device.name;
    $("[data-venue-name]").textContent = state.device.venue_name;
    var select = $("[data-event]");
    select.textContent = "";
    state.events.forEach(function (event) {
      var option = document.createElement("option");
      option.value = String(event.id);
      var when = open(event, now) ? clock(event.starts_at) : App.fill(text.opens, { time: clock(event.opens_at) });
      option.textContent = event.title + " · " + when;
      option.selected = event.id === state.eventId;
      select.appendChild(option);
    });
    $("[data-event-box]").hidden = state.events.length === 0;
    $("[data-ready]").hidden = state.events.length === 0;
    status(state.events.length ? message : App.fill(text.noEvents, { venue: state.device.venue_name }));
    group();
  }

  function group() {
    var name = "kiosk:" + state.eventId;
    root.querySelectorAll("[data-outbox-counts], [data-outbox-lists]").forEach(function (box) {
      box.setAttribute("data-group", name);
    });
    App.render();
  }

  $("[data-event]").addEventListener("change", function (event) {
    state.eventId = parseInt(event.target.value, 10);
    keep();
    group();
  });

  /* --- A card, from the camera or typed ------------------------------------------------------------ */

  function cardNumber(raw) {
    var value = String(raw || "").trim().toUpperCase();
    if (value.indexOf(CARD_PREFIX) === 0) value = value.slice(CARD_PREFIX.length);
    // As printed, grouped with dashes; O, I and L are read as 0, 1 and 1 (server/codes.py normalize)
    value = value.replace(/[\s-]/g, "").replace(/O/g, "0").replace(/[IL]/g, "1");
    return CARD_RE.test(value) ? value : null;
  }

  function pretty(number) { // as printed on the card: groups of four from the right (server/codes.py)
    var groups = [];
    for (var end = number.length; end > 0; end -= 4) groups.unshift(number.slice(Math.max(0, end - 4), end));
    return groups.join("-");
  }

  function feedback(kind) {
    var pattern = { accepted: [90], already: [70, 60, 70], refused: [350], queued: [90] }[kind];
    if (navigator.vibrate && pattern) navigator.vibrate(pattern);
    beep(kind);
  }

  var audio = null;
  function unlockSound() { // browsers let a page make sounds only after a tap
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.resume) audio.resume();
    } catch (e) { audio = null; }
  }

  function beep(kind) {
    if (!audio) return;
    try {
      var tone = audio.createOscillator(), gain = audio.createGain();
      tone.frequency.value = kind === "refused" ? 220 : (kind === "already" ? 520 : 880);
      tone.type = kind === "refused" ? "square" : "sine";
      gain.gain.value = 0.15;
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + (kind === "refused" ? 0.35 : 0.12));
    } catch (e) { /* no sound here: the screen and the vibration say it */ }
  }

  function result(kind, title, who, detail) {
    var box = $("[data-result]");
    box.className = "kiosk-result " + kind;
    $("[data-result-title]").textContent = title;
    $("[data-result-who]").textContent = who || "";
    $("[data-result-text]").textContent = detail || "";
  }

  function whoOf(item) {
    var r = item.result || {};
    var card = App.fill(text.cardLine, { number: pretty(item.number || cardNumber(item.body.card) || "") });
    return r.who ? r.who + " · " + card : card;
  }

  /* The big answer for one outbox item, in whatever state it is. */
  function showItem(item, waited) {
    var r = item.result || {};
    if (item.state === "sent" && r.code === "already_checked_in") {
      result("already", App.fill(text.already, { time: clock(r.checked_in_at) }), whoOf(item));
      feedback("already");
    } else if (item.state === "sent") {
      result("accepted", text.accepted, whoOf(item), clock(r.checked_in_at || item.scanned_at));
      feedback("accepted");
    } else if (item.state === "refused") {
      result("refused", text.refused, whoOf(item), r.message || r.code);
      feedback("refused");
    } else if (waited) {
      result("queued", text.queued, whoOf(item), text.queuedText);
      feedback("queued");
    } else {
      result("sending", text.sending, whoOf(item), "");
    }
  }

  function scannedHere(number) {
    return Outbox.list().then(function (items) {
      var group = "kiosk:" + state.eventId;
      return items.filter(function (item) {
        return item.group === group && item.body.type === "check_in" && cardNumber(item.body.card) === number
          && item.state !== "refused";
      })[0] || null;
    });
  }

  function checkIn(raw) {
    var number = cardNumber(raw);
    if (!number) {
      result("refused", text.refused, "", text.notACard);
      feedback("refused");
      return Promise.resolve(null);
    }
    return scannedHere(number).then(function (earlier) {
      if (earlier) { // known on this kiosk, with or without signal
        shown = earlier.key;
        var at = (earlier.result && earlier.result.checked_in_at) || earlier.scanned_at;
        var answer = earlier.result && earlier.result.code === "already_checked_in" ? earlier.result.checked_in_at : at;
        result("already", App.fill(text.already, { time: clock(answer) }), whoOf(earlier));
        feedback("already");
        return earlier;
      }
      return App.queue({
        url: text.batch,
        body: { type: "check_in", event_id: state.eventId, card: CARD_PREFIX + number },
        label: App.fill(text.cardLine, { number: pretty(number) }),
        group: "kiosk:" + state.eventId,
      }).then(function (record) {
        record.number = number;
        shown = record.key;
        showItem(record, false);
        // Answered within a moment online; otherwise say plainly that it is saved, not yet judged.
        setTimeout(function () {
          if (shown !== record.key) return;
          Outbox.get(record.key).then(function (item) {
            if (item && shown === record.key && item.state === "waiting") showItem(item, true);
          });
        }, JUDGE_WAIT_MS);
        return record;
      });
    });
  }

  document.addEventListener("outbox:rendered", function (event) {
    (event.detail || []).forEach(function (item) {
      if (item.key !== shown || item.state === "waiting") return;
      if (root.getAttribute("data-shown-state") === item.key + item.state) return;
      root.setAttribute("data-shown-state", item.key + item.state);
      showItem(item, true);
    });
    walkInsWaiting(event.detail || []);
  });

  $("[data-typed]").addEventListener("submit", function (event) {
    event.preventDefault();
    unlockSound();
    var input = event.target.elements.card;
    checkIn(input.value).then(function (record) {
      if (record) input.value = "";
      input.focus();
    });
  });

  /* --- Walk-ins without a card ----------------------------------------------------------------------- */

  root.querySelectorAll("[data-delta]").forEach(function (button) {
    button.addEventListener("click", function () {
      unlockSound();
      var delta = parseInt(button.getAttribute("data-delta"), 10);
      App.queue({
        url: text.batch,
        body: { type: "headcount", event_id: state.eventId, delta: delta },
        label: App.fill(text.walkIn, { delta: delta > 0 ? "+" + delta : String(delta) }),
        group: "kiosk:" + state.eventId,
      });
    });
  });

  function walkInsWaiting(items) {
    var box = $("[data-walk-ins-waiting]");
    var total = 0, group = "kiosk:" + state.eventId;
    items.forEach(function (item) {
      if (item.group === group && item.state === "waiting" && item.body.type === "headcount") total += item.body.delta;
    });
    box.hidden = total === 0;
    box.textContent = App.fill(box.getAttribute("data-text"), { n: total > 0 ? "+" + total : String(total) });
  }

  /* --- The camera ------------------------------------------------------------------------------------ */

  function nativeDetector() {
    if (!("BarcodeDetector" in window) || !window.BarcodeDetector.getSupportedFormats) return Promise.resolve(null);
    return window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      if (formats.indexOf("qr_code") < 0) return null;
      root.setAttribute("data-reader", "native");
      return new window.BarcodeDetector({ formats: ["qr_code"] });
    }).catch(function () { return null; });
  }

  function vendoredDetector() {
    return new Promise(function (resolve, reject) {
      if (window.BarcodeDetectionAPI) { resolve(); return; }
      var script = document.createElement("script");
      script.src = text.decoder;
      script.onload = function () { resolve(); };
      script.onerror = function () { reject(new Error("decoder")); };
      document.head.appendChild(script);
    }).then(function () {
      var api = window.BarcodeDetectionAPI;
      // Our own copy of the WebAssembly file, never the package's default CDN.
      api.prepareZXingModule({
        overrides: {
          locateFile: function (path, prefix) { return path.slice(-5) === ".wasm" ? text.wasm : prefix + path; },
        },
        fireImmediately: true,
      });
      root.setAttribute("data-reader", "vendored");
      return new api.BarcodeDetector({ formats: ["qr_code"] });
    });
  }

  function startCamera() {
    var video = $("[data-video]");
    var button = $("[data-camera]");
    unlockSound();
    button.disabled = true;
    var stream = navigator.mediaDevices && navigator.mediaDevices.getUserMedia
      ? navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      : Promise.reject(new Error("no camera"));
    stream.then(function (media) {
      video.srcObject = media;
      video.hidden = false;
      button.hidden = true;
      return video.play().then(function () {
        return nativeDetector().then(function (found) { return found || vendoredDetector(); }).catch(function () {
          status(text.decoderFailed);
          throw new Error("decoder");
        });
      });
    }, function (error) {
      status(text.cameraFailed);
      button.disabled = false;
      throw error;
    }).then(function (found) {
      detector = found;
      scanning = true;
      frame();
    }).catch(function () { /* said above; typing the number still works */ });
  }

  function stopCamera() {
    scanning = false;
    var video = $("[data-video]");
    if (video.srcObject) video.srcObject.getTracks().forEach(function (track) { track.stop(); });
  }

  function frame() {
    if (!scanning) return;
    var video = $("[data-video]");
    if (video.readyState < 2) { setTimeout(frame, FRAME_MS); return; }
    detector.detect(video).then(function (codes) {
      var now = Date.now();
      codes.forEach(function (code) {
        var number = cardNumber(code.rawValue) || code.rawValue;
        if (number === lastRead.number && now - lastRead.at < SAME_CARD_MS) { lastRead.at = now; return; }
        lastRead = { number: number, at: now };
        checkIn(code.rawValue);
      });
    }).catch(function () { /* a frame the decoder could not use: the next one */ }).then(function () {
      setTimeout(frame, FRAME_MS);
    });
  }

  $("[data-camera]").addEventListener("click", startCamera);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && state.device && !state.events.length) load();
  });

  load();
})();
