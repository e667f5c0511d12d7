// eventrules console: the little the pages do without a round trip (no inline scripts: CSP).
"use strict";
function wire(root) {
  root.querySelectorAll("input[type=range][data-output]").forEach(function (input) {
    var output = document.getElementById(input.dataset.output);
    if (!output) return;
    input.addEventListener("input", function () { output.textContent = input.value; });
  });
  root.querySelectorAll("[data-confirm]").forEach(function (element) {
    element.addEventListener("click", function (event) {
      if (!window.confirm(element.dataset.confirm)) event.preventDefault();
    });
  });
}
document.addEventListener("DOMContentLoaded", function () { wire(document); });
document.addEventListener("htmx:load", function (event) { wire(event.target); });
