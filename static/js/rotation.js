/* Rotating screen code: the QR on the organizer's screen changes every PERIOD seconds, so a forwarded photo
   stops working. Must compute exactly what server/rotation.py does: token = first 30 bits of
   HMAC-SHA256(key, String(step)) as 6 Crockford base32 characters, step = floor(unix seconds / PERIOD).
   Its own SHA-256: crypto.subtle exists only on https and localhost, and commune offices use plain-http LAN
   addresses. No network after load. Needs the vendored qrcode-generator (global `qrcode`) to draw. */
(function () {
  var PERIOD = 20, ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];

  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }

  /* SHA-256 of an array of bytes (numbers 0-255), as an array of 32 bytes. */
  function sha256(bytes) {
    var H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var m = bytes.slice(), bits = bytes.length * 8, w = [], i, t;
    m.push(0x80);
    while (m.length % 64 !== 56) m.push(0);
    m.push(0, 0, 0, Math.floor(bits / 0x100000000) & 255);
    m.push((bits >>> 24) & 255, (bits >>> 16) & 255, (bits >>> 8) & 255, bits & 255);
    for (i = 0; i < m.length; i += 64) {
      for (t = 0; t < 16; t++) {
        w[t] = (m[i + 4 * t] << 24) | (m[i + 4 * t + 1] << 16) | (m[i + 4 * t + 2] << 8) | m[i + 4 * t + 3];
      }
      for (t = 16; t < 64; t++) {
        var x = w[t - 15], y = w[t - 2];
        w[t] = (w[t - 16] + (rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3)) + w[t - 7] +
                (rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10))) | 0;
      }
      var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (t = 0; t < 64; t++) {
        var t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
        var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
    }
    var out = [];
    for (i = 0; i < 8; i++) out.push((H[i] >>> 24) & 255, (H[i] >>> 16) & 255, (H[i] >>> 8) & 255, H[i] & 255);
    return out;
  }

  function hmac(key, message) {
    if (key.length > 64) key = sha256(key);
    var inner = [], outer = [], i;
    for (i = 0; i < 64; i++) {
      inner.push((key[i] || 0) ^ 0x36);
      outer.push((key[i] || 0) ^ 0x5c);
    }
    return sha256(outer.concat(sha256(inner.concat(message))));
  }

  function fromHex(hex) {
    var out = [];
    for (var i = 0; i + 1 < hex.length; i += 2) out.push(parseInt(hex.substr(i, 2), 16));
    return out;
  }

  function ascii(text) {
    var out = [];
    for (var i = 0; i < text.length; i++) out.push(text.charCodeAt(i) & 255);
    return out;
  }

  function step(ms, period) { return Math.floor(ms / ((period || PERIOD) * 1000)); }

  function token(keyHex, n) {
    var d = hmac(fromHex(keyHex), ascii(String(n)));
    var bits = ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 2, out = "";
    for (var i = 25; i >= 0; i -= 5) out += ALPHABET.charAt((bits >>> i) & 31);
    return out;
  }

  function link(base, keyHex, n) {
    return base + (base.indexOf("?") < 0 ? "?" : "&") + "t=" + token(keyHex, n);
  }

  /* An SVG of the QR code, one unit per module, with the 4-module quiet zone; the page scales it. */
  function svg(text) {
    var qr = qrcode(0, "M");
    qr.addData(text);
    qr.make();
    var n = qr.getModuleCount(), size = n + 8, d = "";
    for (var r = 0; r < n; r++) {
      for (var c = 0; c < n; c++) {
        if (!qr.isDark(r, c)) continue;
        var start = c;
        while (c + 1 < n && qr.isDark(r, c + 1)) c++;
        d += "M" + (start + 4) + " " + (r + 4) + "h" + (c - start + 1) + "v1h-" + (c - start + 1) + "z";
      }
    }
    return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + size + " " + size +
      '" shape-rendering="crispEdges"><rect width="' + size + '" height="' + size +
      '" fill="#fff"/><path fill="#000" d="' + d + '"/></svg>';
  }

  /* Moves the countdown bar to `to` (a fraction) over `ms`, after jumping to `from` unless it is null. */
  function setBar(el, from, to, ms) {
    var s = el.style;
    if (from !== null) {
      s.webkitTransition = s.transition = "none";
      s.webkitTransform = s.transform = "scaleX(" + from + ")";
      void el.offsetWidth; // commit the jump, or the browser animates the bar growing back
    }
    s.webkitTransition = "-webkit-transform " + ms + "ms linear";
    s.transition = "transform " + ms + "ms linear";
    s.webkitTransform = s.transform = "scaleX(" + to + ")";
  }

  function start(root) {
    var key = root.getAttribute("data-key"), base = root.getAttribute("data-link");
    var period = parseInt(root.getAttribute("data-period"), 10) || PERIOD;
    // The server's clock when it made the page: a phone whose clock is off still shows the server's step.
    var serverMs = parseInt(root.getAttribute("data-server-ms"), 10);
    var offset = serverMs ? serverMs - Date.now() : parseInt(root.getAttribute("data-offset-ms"), 10) || 0;
    var box = document.getElementById("screen-qr"), bar = document.getElementById("screen-bar");
    var seconds = document.getElementById("screen-seconds"), shown = null, timer = null, lock = null;
    var periodMs = period * 1000;

    function tick() {
      clearTimeout(timer);
      var now = Date.now() + offset, n = step(now, period), left = periodMs - (now % periodMs);
      var next = 1000 - (now % 1000); // to the next whole second, and so exactly to the next step
      var changed = n !== shown;
      if (changed) {
        box.innerHTML = svg(link(base, key, n));
        root.setAttribute("data-step", String(n));
        shown = n;
      }
      if (seconds) seconds.textContent = String(Math.ceil(left / 1000));
      if (bar) setBar(bar, changed ? left / periodMs : null, Math.max(0, left - next) / periodMs, next);
      timer = setTimeout(tick, next);
    }

    function wake() {
      try {
        if (navigator.wakeLock && document.visibilityState === "visible" && !lock) {
          navigator.wakeLock.request("screen").then(function (l) {
            lock = l;
            l.addEventListener("release", function () { lock = null; });
          }, function () { /* refused (battery saver, no permission): the screen may dim */ });
        }
      } catch (e) { /* no Wake Lock API */ }
    }

    // Hidden tabs get their timers throttled, and the browser drops the wake lock: catch up on return.
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { tick(); wake(); }
    });
    tick();
    wake();
  }

  window.DiemdanhRotation = { PERIOD: PERIOD, step: step, token: token, link: link };

  function init() {
    var root = document.getElementById("screen");
    if (root && root.getAttribute("data-key") && typeof qrcode === "function") start(root);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
