/* Keeps the anonymous device token in both the cookie and localStorage: in-app browsers (Zalo) may drop one,
   and brings a refusal into view so the button never looks dead. The page works without it: the form posts. */
(function () {
  var KEY = "dd_device", AGE = 63072000;
  function cookie() { var m = document.cookie.match(/(?:^|; )dd_device=([^;]+)/); return m ? m[1] : null; }
  function sync() {
    try {
      var fromCookie = cookie(), saved = localStorage.getItem(KEY);
      if (fromCookie) { if (fromCookie !== saved) localStorage.setItem(KEY, fromCookie); return; }
      if (!saved) return;
      document.cookie = KEY + "=" + saved + "; path=/; max-age=" + AGE + "; samesite=lax";
      var inputs = document.querySelectorAll('input[name="device"]');
      for (var i = 0; i < inputs.length; i++) inputs[i].value = saved;
      // The server did not know this phone (no cookie came with the request): ask again, now with it.
      if (document.querySelector("[data-new-participant]") && cookie()) location.reload();
    } catch (e) { /* storage disabled: the cookie alone still works */ }
  }
  function showError() {
    var error = document.getElementById("checkin-error");
    if (!error) return;
    error.scrollIntoView({ block: "center" });
    error.focus({ preventScroll: true });
  }
  /* What only a returning phone needs: the app's manifest (to install it) and its worker, with which this
     phone can check in next time even with no signal (templates/offline/). They wait until the phone has
     checked in once, or already has the worker: on a first visit over weak 3G the worker's files would
     share the line with the check-in itself. */
  var manifest = document.currentScript && document.currentScript.getAttribute("data-manifest");
  function keepForNextTime() {
    var worker = "serviceWorker" in navigator ? navigator.serviceWorker : null;
    if (!document.querySelector("#checkin[data-checked-in]") && !(worker && worker.controller)) return;
    if (manifest && !document.querySelector('link[rel="manifest"]')) {
      var link = document.createElement("link");
      link.rel = "manifest";
      link.href = manifest;
      document.head.appendChild(link);
    }
    if (worker) worker.register("/sw.js").catch(function () {});
  }
  sync();
  showError();
  keepForNextTime();
  document.addEventListener("htmx:afterSwap", function () { sync(); showError(); keepForNextTime(); });
})();
