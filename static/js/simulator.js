// The sandbox phone: keeps the newest message in view, puts the cursor back in the message
// box after sending, and stops looking for replies while the tab is hidden (a hidden phone
// reads nothing, so it must not report messages as read).
(function () {
  "use strict";

  function screen() {
    return document.getElementById("phone-screen");
  }

  var wasAtBottom = true;

  function scrollToBottom() {
    var element = screen();
    if (element) {
      element.scrollTop = element.scrollHeight;
    }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (source && source.id === "phone-screen" && document.hidden) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:beforeSwap", function () {
    var element = screen();
    wasAtBottom =
      !element || element.scrollHeight - element.scrollTop - element.clientHeight < 60;
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "phone-screen" && wasAtBottom) {
      scrollToBottom();
    }
  });

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "phone-form") {
      scrollToBottom();
      var body = document.getElementById("phone-body");
      if (body) {
        body.focus();
      }
    }
  });

  document.addEventListener("DOMContentLoaded", scrollToBottom);
})();
