// Sales OS shell behaviour: the phone menu, closing dropdown menus, dismissing messages.
// Loaded with `defer`; no inline scripts anywhere (the Content-Security-Policy forbids them).
(function () {
  "use strict";

  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (menu !== except) {
        menu.removeAttribute("open");
      }
    });
  }

  function setNav(open) {
    var toggle = document.querySelector("[data-nav-toggle]");
    if (!toggle) {
      return;
    }
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    document.body.classList.toggle("nav-open", open);
  }

  document.addEventListener("click", function (event) {
    var target = event.target;

    var toggle = target.closest("[data-nav-toggle]");
    if (toggle) {
      setNav(toggle.getAttribute("aria-expanded") !== "true");
      return;
    }

    var dismiss = target.closest("[data-dismiss]");
    if (dismiss) {
      var message = dismiss.closest(".message");
      if (message) {
        message.remove();
      }
      var main = document.getElementById("main");
      if (main) {
        main.focus();
      }
      return;
    }

    // A click outside an open menu closes it; opening one closes the others.
    closeMenus(target.closest("details.menu"));
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    var open = document.querySelector("details.menu[open]");
    if (open) {
      open.removeAttribute("open");
      var summary = open.querySelector("summary");
      if (summary) {
        summary.focus();
      }
      return;
    }
    if (document.body.classList.contains("nav-open")) {
      setNav(false);
      var toggle = document.querySelector("[data-nav-toggle]");
      if (toggle) {
        toggle.focus();
      }
    }
  });
})();
