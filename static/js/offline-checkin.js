/* The resident's check-in with no signal (templates/offline/checkin.html, which the service worker shows for
   any /c/<code> link): one tap (or the first-time questions) puts the scan in the phone's outbox with the
   time it was made; the outbox sends it when the signal returns, and this page says which it is. */
(function () {
  "use strict";
  var App = window.DiemdanhApp;
  var root = document.querySelector("[data-offline-checkin]");
  if (!root) return;
  var text = root.dataset;
  var form = root.querySelector("[data-form]");
  var result = root.querySelector("[data-result]");
  var error = root.querySelector("[data-error]");
  var DEVICE = "dd_device", AGE = 63072000;

  var match = location.pathname.match(/^\/c\/([^/]+)$/);
  var code = match ? decodeURIComponent(match[1]).replace(/[^0-9A-Za-z]/g, "").toUpperCase() : "";
  var group = "code:" + code;
  document.querySelectorAll("[data-code]").forEach(function (el) { el.textContent = code; });

  function deviceToken() {
    var m = document.cookie.match(/(?:^|; )dd_device=([^;]+)/);
    if (m) return m[1];
    try { return localStorage.getItem(DEVICE); } catch (e) { return null; }
  }

  /* A new phone's token, made here because the server cannot hand one back to a phone with no signal. */
  function newDeviceToken() {
    var bytes = new Uint8Array(24);
    crypto.getRandomValues(bytes);
    var token = btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    try { localStorage.setItem(DEVICE, token); } catch (e) { /* the cookie still holds it */ }
    document.cookie = DEVICE + "=" + token + "; path=/; max-age=" + AGE + "; samesite=lax";
    return token;
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
    error.scrollIntoView({ block: "center" });
    error.focus({ preventScroll: true });
  }

  function notice(title, line, bad) {
    root.querySelector("[data-result-title]").textContent = title;
    root.querySelector("[data-result-text]").textContent = line;
    result.className = "card notice " + (bad ? "error" : "ok");
    result.setAttribute("role", bad ? "alert" : "status");
    result.hidden = false;
    form.hidden = true;
  }

  function showItem(item) {
    var r = item.result || {};
    if (item.state === "waiting") {
      return notice(text.titleWaiting, App.fill(text.saved, { time: App.clock(item.scanned_at) }), false);
    }
    if (item.state === "sent") {
      var line = r.code === "already_checked_in" ? text.already : text.sent;
      var time = App.clock(r.checked_in_at || item.scanned_at);
      return notice(text.titleSent, App.fill(line, { time: time }), false);
    }
    return notice(text.titleRefused, App.fill(text.refused, { reason: r.message || r.code || "" }), true);
  }

  function latest(items) {
    var found = null;
    items.forEach(function (item) { if (item.group === group && item.state !== "refused") found = item; });
    return found;
  }

  if (code.length < 9 || code.length > 32) return notice(text.titleRefused, text.badCode, true);
  if (!App || !App.usable) return notice(text.titleRefused, text.unusable, true);

  var token = deviceToken();
  var first = root.querySelector("[data-first-time]");
  if (token) {
    first.remove(); // its required questions are not asked again
    root.querySelector("[data-returning]").hidden = false;
  } else {
    first.hidden = false;
  }

  document.addEventListener("outbox:rendered", function (event) {
    var item = latest(event.detail || []);
    if (item) showItem(item);
    else form.hidden = false;
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    var body = { type: "check_in", code: code };
    if (token) {
      body.device_token = token;
    } else {
      var values = form.elements;
      var band = values.age_band.value, name = values.name.value.trim();
      if (name && (text.children || "").split(" ").indexOf(band) >= 0) {
        showError(text.noNameForChild);
        return;
      }
      body.profile = {
        age_band: band, gender: values.gender.value, name: name || null, consent: values.consent.checked,
      };
      token = newDeviceToken();
      body.device_token = token;
    }
    App.queue({ url: "/api/v1/checkins/batch", body: body, label: code, group: group }).then(showItem);
  });
})();
