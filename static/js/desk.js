/* The organizer's desk through the outbox: a card, a person found by name, someone new and every +1/-1
   are saved on the phone first (static/js/outbox.js) and sent from there, so a desk with no signal keeps
   working and nothing is counted twice. Without IndexedDB the forms post to the server as before. */
(function () {
  "use strict";
  var App = window.DiemdanhApp;
  if (!App || !App.usable) return;
  var URL_BATCH = "/api/v1/checkins/batch";
  var watched = {}; // outbox key -> the form whose note shows its answer

  function value(form, name) {
    var field = form.elements[name];
    return field ? String(field.value || "").trim() : "";
  }

  /* The visit's time from "Entered later?" (local date and time at the event's offset), or now. */
  function visitTime(form) {
    var day = value(form, "visit_date"), time = value(form, "visit_time");
    if (!day && !time) return null;
    var zone = form.closest("[data-utc-offset]");
    var offset = (zone && zone.getAttribute("data-utc-offset")) || "+07:00";
    if (!day) { // today at the event's offset, not in UTC
      var minutes = (offset[0] === "-" ? -1 : 1) * (parseInt(offset.slice(1, 3), 10) * 60 + parseInt(offset.slice(4), 10));
      day = new Date(Date.now() + minutes * 60000).toISOString().slice(0, 10);
    }
    var when = new Date(day + "T" + (time || "00:00") + ":00" + offset);
    return isNaN(when.getTime()) ? null : when;
  }

  function build(form, kind, submitter) {
    var eventId = parseInt(form.getAttribute("data-event"), 10);
    var labels = form.dataset;
    if (kind === "headcount") {
      var delta = parseInt(submitter && submitter.value, 10);
      if (!delta) return null;
      return {
        label: (labels.label || "{delta}").replace("{delta}", delta > 0 ? "+" + delta : String(delta)),
        body: {
          type: "headcount", event_id: eventId, delta: delta,
          age_band: value(form, "age_band") || null, gender: value(form, "gender") || null,
        },
      };
    }
    var body = { type: "check_in", event_id: eventId };
    var label = labels.label || "";
    if (kind === "card") {
      body.card = value(form, "card");
      label = label.replace("{card}", body.card.toUpperCase());
    } else if (kind === "person") {
      body.participant_id = parseInt(value(form, "participant_id"), 10);
    } else if (kind === "new") {
      body.profile = {
        age_band: value(form, "age_band"), gender: value(form, "gender"),
        name: value(form, "name") || null, consent: !!(form.elements.consent && form.elements.consent.checked),
      };
    }
    return { label: label, body: body };
  }

  function note(form) {
    // A result row's small form shows its note at the top of the results, where the server put it.
    var place = form.getAttribute("data-note-in") ? document.querySelector(form.getAttribute("data-note-in")) : form;
    if (!place) return document.createElement("p");
    var box = place.querySelector("[data-outbox-note]");
    if (!box) {
      box = document.createElement("p");
      box.setAttribute("data-outbox-note", "");
      var heading = place.querySelector("h3");
      if (heading) heading.insertAdjacentElement("afterend", box); else place.insertBefore(box, place.firstChild);
    }
    // The server's own note from an earlier post would contradict this one.
    place.querySelectorAll(".flash, .form-error").forEach(function (old) { if (old !== box) old.remove(); });
    return box;
  }

  function show(form, item) {
    // A +1/-1 shows in the pending count beside the number; only a refusal gets a note (above the
    // buttons, as the server's own error was), so the buttons do not move under a counting finger.
    if (item.body.type === "headcount" && item.state !== "refused") {
      var earlier = form.querySelector("[data-outbox-note]");
      if (earlier) earlier.remove(); // an older refusal no longer holds
      if (item.state === "sent") { delete watched[item.key]; refreshLive(); }
      return;
    }
    var box = note(form);
    // Right in the form, the reason alone says it (the lists below also name the item).
    box.textContent = item.state === "refused" ? (item.result.message || item.result.code) : App.describe(item);
    box.className = item.state === "refused" ? "form-error" : (item.state === "sent" ? "flash" : "flash waiting");
    box.setAttribute("role", item.state === "refused" ? "alert" : "status");
    var card = form.elements.card;
    if (item.state === "refused" && card && !card.value && item.body.card) card.value = item.body.card; // to correct
  }

  function refreshLive() {
    var live = document.getElementById("live");
    if (live && window.htmx) window.htmx.trigger(live, "refresh"); // the server's count, without waiting
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var kind = form.getAttribute && form.getAttribute("data-outbox");
    if (!kind) return;
    var item = build(form, kind, event.submitter);
    if (!item) return;
    // Ours, not htmx's and not the browser's: it goes to the outbox first.
    event.preventDefault();
    event.stopPropagation();
    var scanned = visitTime(form);
    App.queue({
      url: URL_BATCH, body: item.body, label: item.label, group: "event:" + item.body.event_id,
      scannedAt: scanned || undefined,
    }).then(function (record) {
      Object.keys(watched).forEach(function (key) { if (watched[key] === form) delete watched[key]; });
      watched[record.key] = form; // the form shows its latest item's answer only
      show(form, record);
      if (kind === "card" && form.elements.card) { form.elements.card.value = ""; form.elements.card.focus(); }
      if (kind === "new") form.reset();
    });
  }, true);

  /* Walk-ins: what the server counted (the live numbers) plus what waits on this phone. */
  function pendingWalkIns(items) {
    var box = document.querySelector("[data-pending-walk-ins]");
    if (!box) return;
    var total = 0, group = box.getAttribute("data-group");
    items.forEach(function (item) {
      if (item.group === group && item.state === "waiting" && item.body.type === "headcount") total += item.body.delta;
    });
    box.hidden = total === 0;
    box.textContent = (box.getAttribute("data-text") || "{n}").replace("{n}", total > 0 ? "+" + total : total);
  }

  document.addEventListener("outbox:rendered", function (event) {
    var items = event.detail || [];
    items.forEach(function (item) { if (watched[item.key]) show(watched[item.key], item); });
    var live = document.getElementById("live-walk-ins"), own = document.getElementById("walk-ins");
    if (live && own) own.textContent = live.textContent; // the poll keeps the server's count fresh
    pendingWalkIns(items);
  });
  document.addEventListener("htmx:afterSwap", function () { App.render(); });
})();
