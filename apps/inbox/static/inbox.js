// The inbox's only script: live updates over server-sent events, ticking timers, Enter to
// send, canned responses. Pages work without it (plain forms); nothing is fetched from
// anywhere but this service.
(function () {
  "use strict";
  var body = document.body;
  var offset = 0; // server clock minus browser clock (the sandbox's clock may be simulated)

  function syncClock(root) {
    var el = root.querySelector("[data-server-now]") || body;
    var server = Date.parse(el.getAttribute("data-server-now") || "");
    if (!isNaN(server)) offset = server - Date.now();
  }

  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + pad(m) : m) + ":" + pad(s % 60);
  }

  function tick() {
    var now = Date.now() + offset;
    document.querySelectorAll(".tick[data-since]").forEach(function (el) {
      el.textContent = duration(now - Date.parse(el.getAttribute("data-since")));
    });
    document.querySelectorAll(".tick[data-until]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("data-until")) - now;
      el.textContent = left > 0 ? duration(left) : body.getAttribute("data-text-overdue");
      el.classList.toggle("overdue", left <= 0);
    });
  }

  // Keep what the agent is typing across a live refresh.
  function saveInputs(root) {
    var saved = {};
    root.querySelectorAll("textarea[id], input[id]:not([type=hidden])").forEach(function (el) {
      saved[el.id] = { value: el.value, focus: el === document.activeElement,
                       start: el.selectionStart, end: el.selectionEnd };
    });
    return saved;
  }
  function restoreInputs(root, saved) {
    Object.keys(saved).forEach(function (id) {
      var el = document.getElementById(id);
      if (!el || !root.contains(el)) return;
      el.value = saved[id].value;
      if (saved[id].focus) {
        el.focus();
        try { el.setSelectionRange(saved[id].start, saved[id].end); } catch (e) { /* select */ }
      }
    });
  }

  var live = document.getElementById("live");
  var refreshing = false, again = false;
  function refresh() {
    if (!live) return;
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(live.getAttribute("data-live-url"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401 || r.redirected) { location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        var saved = saveInputs(live);
        var open = {};
        live.querySelectorAll("details[data-testid]").forEach(function (d) { open[d.getAttribute("data-testid")] = d.open; });
        // The outcome of the agent's last action stays in view across refreshes.
        var oldFlash = live.querySelector("[data-testid=flash]");
        live.innerHTML = html;
        var root = live.firstElementChild;
        if (oldFlash && root && !live.querySelector("[data-testid=flash]")) {
          root.insertBefore(oldFlash, root.firstChild);
        }
        live.querySelectorAll("details[data-testid]").forEach(function (d) {
          var key = d.getAttribute("data-testid");
          if (key in open) d.open = open[key];
        });
        restoreInputs(live, saved);
        syncClock(live);
        tick();
      })
      .catch(function () { /* the next change or reconnect refreshes */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  var timer = null;
  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 50);
  }

  function connect() {
    if (!live || body.getAttribute("data-live") !== "on" || !window.EventSource) return;
    var status = document.querySelector(".live-status");
    var scope = live.getAttribute("data-live-scope");
    var source = new EventSource(body.getAttribute("data-base") + "/events");
    source.addEventListener("ready", function () {
      if (status) { status.textContent = body.getAttribute("data-text-live"); status.classList.remove("off"); }
      // Connected (first time or again): catch up on whatever changed between the page's
      // render and this moment — e.g. a reply's transcript line written right after the
      // redirect that rendered the page; its notification went out before we listened.
      schedule();
    });
    source.addEventListener("changed", function (e) {
      var ids = (e.data || "").split(",");
      if (scope === "*" || ids.indexOf("*") >= 0 || ids.indexOf(scope) >= 0) schedule();
    });
    source.onerror = function () {
      if (status) { status.textContent = body.getAttribute("data-text-offline"); status.classList.add("off"); }
    };
  }

  document.addEventListener("keydown", function (e) {
    var el = e.target;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && el.hasAttribute &&
        el.hasAttribute("data-enter-submits")) {
      e.preventDefault();
      if (el.value.trim() && el.form) el.form.requestSubmit();
    }
  });
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-canned]") : null;
    if (!button) return;
    var area = document.getElementById("reply-text");
    if (!area) return;
    area.value = (area.value ? area.value + " " : "") + button.getAttribute("data-canned");
    area.focus();
  });
  // One submit per form: a double click must not send twice (the nonce also dedups).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.getAttribute("data-submitting")) { e.preventDefault(); return; }
    form.setAttribute("data-submitting", "1");
  });

  syncClock(document);
  tick();
  setInterval(tick, 1000);
  connect();
})();
