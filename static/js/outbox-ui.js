/* The page's side of the outbox (static/js/outbox.js): shows what waits and what was sent, and sends it
   right after each scan, when the connection returns, when the page is shown again, on a timer with
   back-off, and through Background Sync where the browser has it. Registers the service worker. */
(function () {
  "use strict";
  var Outbox = window.DiemdanhOutbox;
  var text = (document.getElementById("outbox-text") || { dataset: {} }).dataset;
  var timer = null;

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch(function () { /* the page works without it */ });
  }
  var usable = !!(Outbox && window.indexedDB);
  window.DiemdanhApp = {
    usable: usable, queue: queue, flush: flush, render: render, describe: describe, clock: clock, fill: fill,
  };
  if (!usable) return;

  /* A translated text with its {name} holes filled ("Đang chờ gửi: {n}"); a missing value leaves "". */
  function fill(template, values) {
    return (template || "").replace(/\{(\w+)\}/g, function (_, name) {
      return values[name] !== undefined ? values[name] : "";
    });
  }

  function clock(value) {
    if (!value) return "";
    try {
      return new Date(value).toLocaleTimeString("vi-VN", {
        hour: "2-digit", minute: "2-digit", hour12: false, timeZone: text.tz || undefined,
      });
    } catch (e) {
      return new Date(value).toTimeString().slice(0, 5);
    }
  }

  /* One line for an item: what it was, and its state in words, so "saved" is never read as "sent". */
  function describe(item) {
    var r = item.result || {};
    if (item.state === "waiting") return item.label + " · " + clock(item.scanned_at) + " · " + text.stateWaiting;
    if (item.state === "refused") return item.label + " · " + (r.message || r.code || text.stateRefused);
    var who = r.who || (r.participant_id ? fill(text.participant, { id: r.participant_id }) : text.someone);
    var line = r.code === "already_checked_in"
      ? fill(text.already, { who: who, time: clock(r.checked_in_at) })
      : (item.body.type === "headcount" ? item.label + " · " + text.stateSent
        : fill(text.checkedIn, { who: who, time: clock(r.checked_in_at || item.scanned_at) }));
    return line + (r.late ? " " + text.late : "");
  }

  function mine(items, group) {
    return group ? items.filter(function (item) { return item.group === group; }) : items;
  }

  function render() {
    return Outbox.list().then(function (all) {
      document.querySelectorAll("[data-outbox-counts]").forEach(function (box) {
        var items = mine(all, box.getAttribute("data-group"));
        var waiting = items.filter(function (i) { return i.state === "waiting"; }).length;
        var sent = items.filter(function (i) { return i.state === "sent"; }).length;
        box.querySelector("[data-waiting]").textContent = fill(text.waiting, { n: waiting });
        box.querySelector("[data-sent]").textContent = fill(text.sent, { n: sent });
        box.classList.toggle("has-waiting", waiting > 0);
        // A page's own counts stay once shown (the buttons under them never move); the top bar's only
        // appear while something is on this phone.
        if (items.length || box.getAttribute("data-group")) box.hidden = false;
      });
      document.querySelectorAll("[data-outbox-lists]").forEach(function (box) {
        var items = mine(all, box.getAttribute("data-group"));
        var refused = items.filter(function (i) { return i.state === "refused"; });
        box.hidden = items.length === 0;
        box.querySelector("[data-login]").hidden = !items.some(function (i) {
          return i.state === "waiting" && i.needs_login;
        });
        box.querySelector("[data-refused-box]").hidden = refused.length === 0;
        listInto(box.querySelector("[data-refused]"), refused, true);
        listInto(box.querySelector("[data-items]"), items.slice().reverse(), false);
      });
      document.dispatchEvent(new CustomEvent("outbox:rendered", { detail: all }));
      return all;
    });
  }

  function listInto(list, items, dismissable) {
    list.textContent = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.className = "outbox-item " + item.state;
      li.setAttribute("data-key", item.key);
      var span = document.createElement("span");
      span.textContent = describe(item);
      li.appendChild(span);
      if (dismissable) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "link";
        button.textContent = text.dismiss;
        button.addEventListener("click", function () { Outbox.dismiss(item.key).then(render); });
        li.appendChild(button);
      }
      list.appendChild(li);
    });
  }

  function schedule() {
    clearTimeout(timer);
    return Outbox.nextDue().then(function (due) {
      if (due === null) return;
      timer = setTimeout(function () { flush(false); }, Math.max(1000, due - Date.now()));
    });
  }

  function flush(force) {
    return Outbox.flush({ force: !!force }).catch(function () {}).then(render).then(function (items) {
      schedule();
      return items;
    });
  }

  function requestSync() {
    if (!("serviceWorker" in navigator) || !window.SyncManager) return;
    navigator.serviceWorker.ready.then(function (registration) {
      return registration.sync && registration.sync.register("outbox");
    }).catch(function () { /* not offered here: the page's own timer sends it */ });
  }

  /* Put a scan in the outbox, then try to send it at once. Resolves when it is saved on the phone. */
  function queue(fields) {
    return Outbox.add(fields).then(function (record) {
      render();
      requestSync();
      flush(true);
      return record;
    });
  }

  Outbox.onChange(render);
  window.addEventListener("online", function () { flush(true); });
  window.addEventListener("pageshow", function () { flush(false); });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) flush(true); });
  render();
  flush(false);
})();
