// The header's menus are <details>: they work without this script. It only closes an open
// menu when the reader clicks elsewhere or presses Escape.
(function () {
  "use strict";
  function menus() { return document.querySelectorAll("details.navmenu[open]"); }
  document.addEventListener("click", function (event) {
    menus().forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    menus().forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary && menu.contains(document.activeElement)) { summary.focus(); }
    });
  });
})();
