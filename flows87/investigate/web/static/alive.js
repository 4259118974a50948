// Keeps the session of someone reading or typing on a page. The idle timeout counts requests,
// and reading a long case or typing a note makes none: after activity (keys, typing, scrolling,
// the pointer) this asks /session/alive, at most once per `data-keepalive` seconds (the
// server's refresh interval). If the session has already ended, it says so at once, before the
// typed text is lost to a sign-in page.
(function () {
  "use strict";
  var every = 1000 * (Number(document.body.dataset.keepalive) || 60);
  var last = Date.now();
  var busy = false;
  var warned = false;

  function warn() {
    if (warned) return;
    warned = true;
    var note = document.createElement("p");
    note.className = "flash error";
    note.id = "signed-out";
    note.setAttribute("role", "alert");
    note.textContent =
      "You have been signed out (idle too long). Copy any text you typed, then sign in again in another tab.";
    var main = document.querySelector("main") || document.body;
    main.insertBefore(note, main.firstChild);
  }

  function ping() {
    if (busy || warned || Date.now() - last < every) return;
    busy = true;
    last = Date.now();
    fetch("/session/alive", { credentials: "same-origin", cache: "no-store", redirect: "manual" })
      .then(function (r) { if (r.status !== 204) warn(); })
      .catch(function () { /* offline: try again after the next activity */ })
      .then(function () { busy = false; });
  }

  ["keydown", "input", "scroll", "pointerdown", "pointermove", "wheel"].forEach(function (name) {
    document.addEventListener(name, ping, { passive: true, capture: true });
  });
})();
