/* The outbox: every check-in and headcount made in the app waits here until the server has answered it.

   One IndexedDB store, shared by the pages and the service worker (this file runs in both). An item is
   written, and its transaction finished, before anybody is told "saved"; it leaves the waiting list only
   when the server answered it: "sent" (stored, or the same key seen before, or already checked in) or
   "refused" (with the server's reason, kept in sight until dismissed). A network error, a timeout or a 5xx
   keeps it waiting, to be tried again after a growing delay. Its key is made here before the first send,
   so the same item sent twice (by the page and by Background Sync at once) is stored once by the engine. */
(function (root) {
  "use strict";
  var DB_NAME = "diemdanh", DB_VERSION = 1, STORE = "outbox";
  var BASE_DELAY = 2000, MAX_DELAY = 5 * 60 * 1000;
  var SENT_KEPT = 2 * 24 * 3600 * 1000; // what was sent stays listed for two days, then goes
  var MAX_BATCH = 100;
  // Refusals that are not about the item: it waits until someone logs in again, then goes.
  var WAIT_FOR_LOGIN = { login_required: true };
  // Answers that are final for the person even though nothing new was stored.
  var DONE_CODES = { already_checked_in: true };
  // Answers that mean "not now": too many new people from this network this minute (services/flood.py).
  var TRY_AGAIN_CODES = { checkin_busy: true };
  var CHANNEL = "diemdanh-outbox";

  var dbPromise = null, flushing = null, followUp = null, followUpOptions = null, channel = null;

  function open() {
    if (!dbPromise) {
      dbPromise = root.idb.openDB(DB_NAME, DB_VERSION, {
        // Versions only ever add stores or indexes: an update of the app never drops what waits.
        upgrade: function (db) {
          if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: "key" });
        },
      });
    }
    return dbPromise;
  }

  /* The delay before the n-th retry: 2 s, 4 s, 8 s ... at most 5 minutes, give or take a fifth (so many
     phones coming back online at once do not all knock at the same second). */
  function backoff(attempts, random) {
    var base = Math.min(MAX_DELAY, BASE_DELAY * Math.pow(2, Math.max(0, attempts - 1)));
    var r = typeof random === "function" ? random() : Math.random();
    return Math.round(base * (0.8 + 0.4 * r));
  }

  /* What the server's answer means for one item: {state: "sent" | "refused" | "waiting", ...}.
     httpStatus 0 is a network error or a timeout; `result` is the item's entry of a batch answer, or the
     problem document of a refused request. */
  function judge(httpStatus, result) {
    result = result || {};
    if (httpStatus === 0 || httpStatus === 408 || httpStatus === 429 || httpStatus >= 500) {
      return { state: "waiting" };
    }
    if (httpStatus === 200 && result.status) {
      if (result.status === "stored" || result.status === "replayed") return { state: "sent", result: result };
      if (DONE_CODES[result.code]) return { state: "sent", result: result };
      if (WAIT_FOR_LOGIN[result.code]) return { state: "waiting", needsLogin: true };
      if (TRY_AGAIN_CODES[result.code]) return { state: "waiting" };
      return { state: "refused", result: result };
    }
    if (WAIT_FOR_LOGIN[result.code]) return { state: "waiting", needsLogin: true };
    // The whole request was refused (a revoked kiosk, a malformed batch): final, with the reason.
    return { state: "refused", result: { status: "refused", code: result.code || "http_" + httpStatus, message: result.title || "" } };
  }

  function newKey() {
    var bytes = new Uint8Array(16);
    root.crypto.getRandomValues(bytes); // crypto.randomUUID needs https; a commune's LAN may be plain http
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] + 256).toString(16).slice(1);
    return "ob-" + out;
  }

  function notify(detail) {
    try {
      if (!channel && root.BroadcastChannel) channel = new root.BroadcastChannel(CHANNEL);
      if (channel) channel.postMessage(detail || { type: "changed" });
    } catch (e) { /* no BroadcastChannel: each page still sees its own changes */ }
    if (root.dispatchEvent && root.CustomEvent) root.dispatchEvent(new root.CustomEvent("outbox:changed"));
  }

  function onChange(listener) {
    if (root.BroadcastChannel) {
      var listen = new root.BroadcastChannel(CHANNEL);
      listen.onmessage = function () { listener(); };
    }
    if (root.addEventListener) root.addEventListener("outbox:changed", function () { listener(); });
  }

  /* Put an item in the outbox; resolves when it is on disk. `fields`: url, body (the batch item without
     its key), label (what the page lists), group (e.g. "event:12"), scannedAt (a Date; default now). */
  function add(fields) {
    var now = new Date();
    var scanned = fields.scannedAt || now;
    var body = Object.assign({}, fields.body);
    body.key = body.key || fields.key || newKey();
    if (!body.claimed_at) body.claimed_at = scanned.toISOString();
    var record = {
      key: body.key,
      url: fields.url,
      body: body,
      label: fields.label || "",
      group: fields.group || "",
      scanned_at: scanned.getTime(),
      created_at: now.getTime(),
      state: "waiting",
      attempts: 0,
      next_at: 0,
      needs_login: false,
      result: null,
      answered_at: null,
    };
    return open().then(function (db) {
      var tx = db.transaction(STORE, "readwrite");
      tx.store.put(record);
      return tx.done;
    }).then(function () {
      persist();
      notify();
      return record;
    });
  }

  var persisted = false;
  function persist() {
    // Ask the browser not to evict the outbox under storage pressure (granted to installed apps).
    if (persisted || !root.navigator || !root.navigator.storage || !root.navigator.storage.persist) return;
    persisted = true;
    root.navigator.storage.persist().catch(function () {});
  }

  function list() {
    return open().then(function (db) { return db.getAll(STORE); }).then(function (items) {
      return items.sort(function (a, b) { return a.created_at - b.created_at; });
    });
  }

  function get(key) {
    return open().then(function (db) { return db.get(STORE, key); });
  }

  function dismiss(key) {
    return open().then(function (db) {
      var tx = db.transaction(STORE, "readwrite");
      return tx.store.get(key).then(function (item) {
        if (item && item.state !== "waiting") tx.store.delete(key); // a waiting item is never thrown away
        return tx.done;
      });
    }).then(function () { notify(); });
  }

  function nextDue() {
    return list().then(function (items) {
      var due = null;
      items.forEach(function (item) {
        if (item.state === "waiting" && (due === null || item.next_at < due)) due = item.next_at;
      });
      return due;
    });
  }

  /* Record the answers of one request: `answers` maps key -> {state, result, needsLogin}. Read and
     written in one transaction, so an item dismissed meanwhile is not brought back. */
  function record(answers, now, random) {
    return open().then(function (db) {
      var tx = db.transaction(STORE, "readwrite");
      var keys = Object.keys(answers);
      return Promise.all(keys.map(function (key) {
        return tx.store.get(key).then(function (item) {
          if (!item || item.state !== "waiting") return; // answered already (another sender won)
          var answer = answers[key];
          item.needs_login = !!answer.needsLogin;
          if (answer.state === "waiting") {
            item.attempts += 1;
            item.next_at = now + backoff(item.attempts, random);
          } else {
            item.state = answer.state;
            item.result = answer.result || null;
            item.answered_at = now;
          }
          return tx.store.put(item);
        });
      })).then(function () { return tx.done; });
    });
  }

  function prune(now) {
    return open().then(function (db) {
      var tx = db.transaction(STORE, "readwrite");
      return tx.store.getAll().then(function (items) {
        items.forEach(function (item) {
          if (item.state === "sent" && now - item.answered_at > SENT_KEPT) tx.store.delete(item.key);
        });
        return tx.done;
      });
    });
  }

  function send(fetcher, url, items) {
    return fetcher(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ items: items.map(function (item) { return item.body; }) }),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    }, function () {
      return { status: 0, data: {} };
    });
  }

  /* Send what waits. options: force (ignore the back-off: the connection just came back), fetch, now,
     random. Resolves to {sent, refused, waiting}: how many of each this round left. */
  function flush(options) {
    options = options || {};
    // One round at a time in this page or worker. A call during a round is answered by one more round
    // after it, so an item added meanwhile is not left for the timer; every call made during the same
    // round shares that one follow-up (forced if any of them asked), which starts after all of them.
    if (flushing) {
      followUpOptions = followUp
        ? Object.assign({}, options, { force: !!(options.force || followUpOptions.force) })
        : options;
      if (!followUp) {
        followUp = flushing.catch(function () {}).then(function () {
          var next = followUpOptions;
          followUp = followUpOptions = null; // a call from now on waits for a round after this one
          return flush(next);
        });
      }
      return followUp;
    }
    var fetcher = options.fetch || root.fetch.bind(root);
    var now = options.now || Date.now();
    flushing = list().then(function (items) {
      var due = items.filter(function (item) {
        return item.state === "waiting" && (options.force || item.next_at <= now);
      });
      var byUrl = {};
      due.forEach(function (item) { (byUrl[item.url] = byUrl[item.url] || []).push(item); });
      var rounds = [];
      Object.keys(byUrl).forEach(function (url) {
        for (var i = 0; i < byUrl[url].length; i += MAX_BATCH) rounds.push([url, byUrl[url].slice(i, i + MAX_BATCH)]);
      });
      var tally = { sent: 0, refused: 0, waiting: 0 };
      return rounds.reduce(function (previous, round) {
        return previous.then(function () {
          return send(fetcher, round[0], round[1]).then(function (answer) {
            var answers = {};
            var results = {};
            if (answer.status === 200 && answer.data && answer.data.results) {
              answer.data.results.forEach(function (r) { results[r.key] = r; });
            }
            round[1].forEach(function (item) {
              var verdict = answer.status === 200
                ? judge(200, results[item.key] || null)
                : judge(answer.status, answer.data);
              if (answer.status === 200 && !results[item.key]) verdict = { state: "waiting" };
              answers[item.key] = verdict;
              tally[verdict.state] += 1;
            });
            return record(answers, now, options.random);
          });
        });
      }, Promise.resolve()).then(function () {
        return prune(now);
      }).then(function () {
        if (rounds.length) notify();
        return tally;
      });
    });
    var done = function () { flushing = null; };
    flushing.then(done, done);
    return flushing;
  }

  root.DiemdanhOutbox = {
    add: add,
    list: list,
    get: get,
    dismiss: dismiss,
    flush: flush,
    nextDue: nextDue,
    onChange: onChange,
    newKey: newKey,
    backoff: backoff,
    judge: judge,
    STORE: STORE,
  };
})(self);
