// The shared inbox: live updates arrive through HTMX polling (the server sends only what
// changed); this file tidies what they bring in, keeps the thread scrolled to the newest
// message, shows the chosen template's fields and adds keyboard shortcuts.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
(function () {
  "use strict";

  // A row or message can arrive twice (a live update of something already shown, or a reply
  // that both the send and the next poll return): keep one copy per data-key.
  function dedupe(container) {
    var keepLast = container.getAttribute("data-dedupe") === "last";
    var items = Array.prototype.slice.call(container.querySelectorAll(":scope > [data-key]"));
    if (keepLast) {
      items.reverse();
    }
    var seen = {};
    items.forEach(function (item) {
      var key = item.getAttribute("data-key");
      if (seen[key]) {
        item.remove();
      } else {
        seen[key] = true;
      }
    });
  }

  function tidy() {
    document.querySelectorAll("[data-dedupe]").forEach(dedupe);
    ["list-empty", "thread-empty"].forEach(function (id) {
      var placeholder = document.getElementById(id);
      if (!placeholder) {
        return;
      }
      var list = placeholder.closest("ol, ul") || placeholder.parentElement.querySelector("ul, ol");
      if (list && list.querySelector("[data-key]")) {
        placeholder.remove();
      }
    });
    showChosenTemplate();
  }

  function thread() {
    return document.getElementById("thread-messages");
  }

  function nearBottom(element) {
    return element.scrollHeight - element.scrollTop - element.clientHeight < 80;
  }

  function scrollToBottom() {
    var messages = thread();
    if (messages) {
      messages.scrollTop = messages.scrollHeight;
    }
  }

  // Only the chosen template's variables are shown; without scripts, every template's are.
  function showChosenTemplate() {
    document.querySelectorAll("[data-template-select]").forEach(function (select) {
      var form = select.form;
      form.classList.add("js-templates");
      form.querySelectorAll("[data-template-fields]").forEach(function (fieldset) {
        var chosen = fieldset.getAttribute("data-template-fields") === select.value;
        fieldset.hidden = !chosen;
        fieldset.disabled = !chosen;
      });
    });
  }

  var wasAtBottom = true;

  document.addEventListener("htmx:beforeSwap", function () {
    var messages = thread();
    wasAtBottom = !messages || nearBottom(messages);
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    tidy();
    var target = event.detail && event.detail.target;
    if (target && target.id === "thread-messages" && wasAtBottom) {
      scrollToBottom();
    }
    if (target && target.id === "composer") {
      // The reply just sent is at the bottom; the agent wants to see it.
      scrollToBottom();
      var body = document.getElementById("reply-body");
      if (body && !body.value) {
        body.focus();
      }
    }
  });

  document.addEventListener("htmx:oobAfterSwap", tidy);

  // Polling pauses while the tab is hidden: nothing to show, no reason to ask.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (source && source.classList && source.classList.contains("poller") && document.hidden) {
      event.preventDefault();
    }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-template-select]")) {
      showChosenTemplate();
      return;
    }
    var form = target.closest("form[data-autosubmit]");
    if (form && target.tagName === "SELECT") {
      form.requestSubmit();
    }
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (
      event.key === "Enter" &&
      (event.ctrlKey || event.metaKey) &&
      target.matches("textarea[data-submit-on-ctrl-enter]")
    ) {
      event.preventDefault();
      target.form.requestSubmit();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    tidy();
    scrollToBottom();
  });
})();
