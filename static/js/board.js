// The deals board: drag a card to another column (or another place in its column) and the
// server answers with the re-rendered columns. Without JavaScript every card keeps its own
// form (a stage list and previous/next buttons), which is also the keyboard path.
(function () {
  "use strict";

  var dragged = null;

  function announce(text) {
    var status = document.getElementById("board-status");
    if (status && text) {
      status.textContent = text;
    }
  }

  function clearHighlights() {
    document.querySelectorAll("[data-dropzone].is-over").forEach(function (zone) {
      zone.classList.remove("is-over");
    });
  }

  function dropIndex(zone, y) {
    var cards = Array.prototype.filter.call(
      zone.querySelectorAll("[data-deal-id]"),
      function (card) {
        return card !== dragged;
      }
    );
    for (var i = 0; i < cards.length; i++) {
      var box = cards[i].getBoundingClientRect();
      if (y < box.top + box.height / 2) {
        return i;
      }
    }
    return cards.length;
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest("[data-deal-id]");
    if (!card) {
      return;
    }
    dragged = card;
    card.classList.add("is-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-deal-id"));
  });

  document.addEventListener("dragend", function () {
    if (dragged) {
      dragged.classList.remove("is-dragging");
    }
    dragged = null;
    clearHighlights();
  });

  // The whole column takes a drop (its header too), not only its list of cards.
  function zoneAt(target) {
    var column = target.closest && target.closest("[data-stage-id]");
    return column ? column.querySelector("[data-dropzone]") : null;
  }

  document.addEventListener("dragover", function (event) {
    if (!dragged) {
      return;
    }
    var zone = zoneAt(event.target);
    if (!zone) {
      return;
    }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    if (!zone.classList.contains("is-over")) {
      clearHighlights();
      zone.classList.add("is-over");
    }
  });

  document.addEventListener("drop", function (event) {
    var zone = zoneAt(event.target);
    if (!dragged || !zone || !window.htmx) {
      return;
    }
    event.preventDefault();
    var column = zone.closest("[data-stage-id]");
    var board = zone.closest("[data-board]");
    var values = {
      stage: column.getAttribute("data-stage-id"),
      position: String(dropIndex(zone, event.clientY)),
      owner: board ? board.getAttribute("data-owner") || "" : ""
    };
    var url = dragged.getAttribute("data-move-url");
    clearHighlights();
    window.htmx.ajax("POST", url, {
      target: "#board-columns",
      swap: "outerHTML",
      values: values
    });
  });

  document.body.addEventListener("htmx:afterSwap", function () {
    var board = document.getElementById("board-columns");
    if (board) {
      announce(board.getAttribute("data-announce"));
    }
  });

  document.body.addEventListener("htmx:responseError", function (event) {
    var text = "";
    try {
      text = JSON.parse(event.detail.xhr.responseText).error;
    } catch (ignored) {
      text = event.detail.xhr.statusText;
    }
    announce(text);
    window.alert(text);
  });
})();
