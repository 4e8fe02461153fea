// The theme builds the version selector after it read versions.json, and names its button
// "Select version" whatever it shows. Screen reader users hear one thing and see another
// (axe: label-content-name-mismatch), so the name is made to start with the version shown.
(function () {
  function name(button) {
    var shown = button.textContent.trim()
    var label = "Version " + shown + ": select another version"
    if (shown && button.getAttribute("aria-label") !== label) button.setAttribute("aria-label", label)
  }
  function scan() {
    document.querySelectorAll(".md-version__current").forEach(name)
  }
  new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true })
  scan()
})()
