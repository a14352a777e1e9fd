/* floor: the durable queue of scans made while the handheld cannot reach the server.
 *
 * Shared by the pack and the returns screens. Each scan is stored in IndexedDB under its
 * scan_id with a sequence number that only grows, its payload, the provisional verdict the
 * screen showed and the time; it survives a reload. The replayer sends the oldest scan, one
 * at a time and always with its original scan_id (the server is idempotent on it), and deletes
 * it only once the server's answer for that scan_id has arrived. An answer with a stable code,
 * a refusal included, is final; a network failure, a timeout, a 5xx or a `server_error` /
 * `database_unavailable` style answer is not: the scan stays and is tried again with backoff.
 *
 * Also a small key/value store ("meta") for what a reload while offline needs back, such as
 * the kit snapshot the screen holds. Without IndexedDB (some private modes) it all lives in
 * memory and `durable` is false: the screens say so.
 */
(function (global) {
  "use strict";

  var DB_VERSION = 1;
  var SCANS = "scans";
  var META = "meta";

  // Answers that are no answer: the scan was maybe not recorded, or its answer was lost.
  var RETRY_CODES = {
    not_sent: true, timeout: true, server_error: true, database_unavailable: true,
    service_unavailable: true, too_many_requests: true, http_error: true,
    // The login or the form token ran out: once the packer logs in again the scan goes through.
    unauthenticated: true, csrf_failed: true,
    // Queued under another login on this device: it waits for that user, never goes as this one.
    other_user: true
  };

  function isFinal(answer) {
    if (!answer || typeof answer !== "object" || !answer.code) return false;
    var code = String(answer.code);
    if (RETRY_CODES[code] || /^http_/.test(code)) return false;
    if (typeof answer.httpStatus === "number" && (answer.httpStatus >= 500 || answer.httpStatus === 0)) return false;
    return true;
  }

  function promisify(request) {
    return new Promise(function (resolve, reject) {
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function done(tx) {
    return new Promise(function (resolve, reject) {
      tx.oncomplete = function () { resolve(); };
      tx.onerror = function () { reject(tx.error); };
      tx.onabort = function () { reject(tx.error || new Error("aborted")); };
    });
  }

  function openDb(name) {
    return new Promise(function (resolve, reject) {
      if (!global.indexedDB) { reject(new Error("no IndexedDB")); return; }
      var req;
      try { req = global.indexedDB.open(name, DB_VERSION); } catch (e) { reject(e); return; }
      req.onupgradeneeded = function () {
        var db = req.result;
        if (!db.objectStoreNames.contains(SCANS)) {
          db.createObjectStore(SCANS, { keyPath: "scan_id" }).createIndex("seq", "seq", { unique: true });
        }
        if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
      req.onblocked = function () { reject(new Error("blocked")); };
    });
  }

  /* The store: IndexedDB when it opens, memory otherwise. Every method answers a Promise. */
  function Store(name) {
    var self = this;
    this.name = name;
    this.durable = false;
    this._memory = { scans: {}, meta: {} };
    this._seq = 0;
    this.ready = openDb(name).then(function (db) {
      self._db = db;
      self.durable = true;
      // Ask the browser not to evict this site's storage under pressure (granted silently or not).
      if (global.navigator && navigator.storage && typeof navigator.storage.persist === "function") {
        navigator.storage.persist().catch(function () {});
      }
    }, function () { self._db = null; });
  }

  Store.prototype._tx = function (stores, mode) {
    return this._db.transaction(stores, mode);
  };

  /* Append a scan; `entry` has scan_id, payload, provisional, at. Answers the stored entry. */
  Store.prototype.add = function (entry) {
    var self = this;
    var inMemory = function () {
      // No IndexedDB, or it refused the write (quota): the scan still goes, after the others.
      entry.seq = ++self._seq;
      self._memory.scans[entry.scan_id] = entry;
      return entry;
    };
    return this.ready.then(function () {
      if (!self._db) return inMemory();
      // The sequence counter and the scan are written in one transaction: never two alike.
      var tx = self._tx([SCANS, META], "readwrite");
      var meta = tx.objectStore(META);
      var get = meta.get("seq");
      get.onsuccess = function () {
        entry.seq = (get.result || 0) + 1;
        meta.put(entry.seq, "seq");
        tx.objectStore(SCANS).put(entry);
      };
      return done(tx).then(function () {
        self._seq = Math.max(self._seq, entry.seq);
        return entry;
      }, inMemory);
    });
  };

  Store.prototype.update = function (entry) {
    var self = this;
    return this.ready.then(function () {
      if (!self._db || self._memory.scans[entry.scan_id]) { self._memory.scans[entry.scan_id] = entry; return entry; }
      var tx = self._tx([SCANS], "readwrite");
      tx.objectStore(SCANS).put(entry);
      return done(tx).then(function () { return entry; });
    });
  };

  /* Every queued scan, oldest first. */
  Store.prototype.all = function () {
    var self = this;
    var memory = function () {
      return Object.keys(self._memory.scans).map(function (k) { return self._memory.scans[k]; });
    };
    return this.ready.then(function () {
      if (!self._db) return memory().sort(function (a, b) { return a.seq - b.seq; });
      var tx = self._tx([SCANS], "readonly");
      return promisify(tx.objectStore(SCANS).index("seq").getAll()).then(function (rows) {
        rows.forEach(function (row) { self._seq = Math.max(self._seq, row.seq); });
        return rows.concat(memory()).sort(function (a, b) { return a.seq - b.seq; });
      });
    });
  };

  Store.prototype.remove = function (scanId) {
    var self = this;
    return this.ready.then(function () {
      if (self._memory.scans[scanId]) { delete self._memory.scans[scanId]; return; }
      if (!self._db) return;
      var tx = self._tx([SCANS], "readwrite");
      tx.objectStore(SCANS).delete(scanId);
      return done(tx);
    });
  };

  Store.prototype.getMeta = function (key) {
    var self = this;
    return this.ready.then(function () {
      if (!self._db) return self._memory.meta[key];
      return promisify(self._tx([META], "readonly").objectStore(META).get(key));
    });
  };

  Store.prototype.setMeta = function (key, value) {
    var self = this;
    return this.ready.then(function () {
      if (!self._db) { self._memory.meta[key] = value; return; }
      var tx = self._tx([META], "readwrite");
      tx.objectStore(META).put(value, key);
      return done(tx);
    });
  };

  /* The replayer: sends the queue's oldest scan with `send(entry)` (a Promise of the answer),
   * hands each final answer to `onAnswer(entry, answer)` after deleting the scan, and tells
   * `onChange(pending, lastError)` whenever the number of waiting scans changes or a try fails.
   * `spacing(previous, entry)`: milliseconds to wait before sending `entry` after `previous`
   * (the server's debounce), 0 for none. */
  function Replayer(store, options) {
    this.store = store;
    this.send = options.send;
    this.onAnswer = options.onAnswer || function () {};
    this.onChange = options.onChange || function () {};
    this.spacing = options.spacing || function () { return 0; };
    this.minDelay = options.minDelayMs || 1000;
    this.maxDelay = options.maxDelayMs || 30000;
    this.delay = this.minDelay;
    this.running = false;
    this.timer = null;
    this.pending = 0;
    this.failing = false;     // the last try found no server
    this.previous = null;     // the last scan sent, and when: { entry, sentAt }
  }

  Replayer.prototype.refresh = function () {
    var self = this;
    return this.store.all().then(function (rows) {
      self.pending = rows.length;
      self.onChange(self.pending, self.failing);
      return rows;
    });
  };

  /* Try now (a reconnect, `online`, a page load, a new scan), whatever the backoff said. */
  Replayer.prototype.kick = function () {
    global.clearTimeout(this.timer);
    this.timer = null;
    this.delay = this.minDelay;
    this._run();
  };

  Replayer.prototype._later = function () {
    var self = this;
    global.clearTimeout(this.timer);
    this.timer = global.setTimeout(function () { self.timer = null; self._run(); }, this.delay);
    this.delay = Math.min(this.delay * 2, this.maxDelay);
  };

  Replayer.prototype._run = function () {
    if (this.running) { this.again = true; return; }
    this.running = true;
    this.again = false;
    var self = this;
    var finish = function () {
      self.running = false;
      // A scan queued while the last step was reading an empty store: go round once more.
      if (self.again && !self.timer) self._run();
    };
    // Two tabs of one screen share the queue: one replays at a time (Web Locks, where there).
    var step = function () { return self._step(); };
    var locks = global.navigator && navigator.locks && typeof navigator.locks.request === "function";
    (locks ? navigator.locks.request("floor-replay:" + this.store.name, step) : step()).then(finish, function () {
      self.again = false;
      finish();
      self._later();
    });
  };

  Replayer.prototype._step = function () {
    var self = this;
    return this.store.all().then(function (rows) {
      self.pending = rows.length;
      if (!rows.length) {
        self.failing = false;
        self.onChange(0, false);
        return null;
      }
      var entry = rows[0];
      var wait = 0;
      if (self.previous) {
        var gap = self.spacing(self.previous.entry, entry);
        wait = Math.max(0, self.previous.sentAt + gap - Date.now());
      }
      return new Promise(function (resolve) { global.setTimeout(resolve, wait); }).then(function () {
        self.previous = { entry: entry, sentAt: Date.now() };
        return Promise.resolve(self.send(entry)).catch(function () {
          return { ok: false, code: "not_sent" };
        });
      }).then(function (answer) {
        if (!isFinal(answer)) {
          self.failing = true;
          self.onChange(self.pending, true);
          throw new Error("no answer");
        }
        return self.store.remove(entry.scan_id).then(function () {
          self.failing = false;
          self.delay = self.minDelay;
          self.pending = Math.max(0, rows.length - 1);
          try { self.onAnswer(entry, answer, self.pending); } catch (e) { /* the screen's problem */ }
          self.onChange(self.pending, false);
          return self._step();
        });
      });
    });
  };

  global.FloorOffline = {
    Store: Store,
    Replayer: Replayer,
    isFinal: isFinal
  };
})(window);
