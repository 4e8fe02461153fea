// A table or the diagram that is wider than the screen scrolls sideways inside its box (on a
// phone, mostly). Keyboard users can scroll such a box only if it can take the focus (axe:
// scrollable-region-focusable), so a box that overflows now is made a named, focusable region,
// and one that fits again is given back as it was.
(function () {
  var BOXES = ".md-typeset__scrollwrap, .md-typeset figure.betrace-diagram"
  function label(box) {
    var caption = box.querySelector("figcaption, caption")
    var heading = caption ? caption.textContent.trim() : ""
    return (heading || (box.querySelector("table") ? "Table" : "Figure")) + " (scrolls sideways)"
  }
  function mark(box) {
    var overflows = box.scrollWidth > box.clientWidth + 1
    if (overflows && !box.hasAttribute("data-betrace-scroll")) {
      box.setAttribute("data-betrace-scroll", "")
      box.setAttribute("tabindex", "0")
      box.setAttribute("role", "region")
      box.setAttribute("aria-label", label(box))
    } else if (!overflows && box.hasAttribute("data-betrace-scroll")) {
      ;["data-betrace-scroll", "tabindex", "role", "aria-label"].forEach(function (name) {
        box.removeAttribute(name)
      })
    }
  }
  function scan() {
    document.querySelectorAll(BOXES).forEach(mark)
  }
  var pending = false
  function later() {
    if (pending) return
    pending = true
    requestAnimationFrame(function () {
      pending = false
      scan()
    })
  }
  new MutationObserver(later).observe(document.documentElement, { childList: true, subtree: true })
  window.addEventListener("resize", later)
  window.addEventListener("load", scan)
  scan()
})()
