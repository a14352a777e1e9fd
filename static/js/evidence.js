/* floor packing evidence: clicking a scan seeks the video to the scan's frame; the print
 * button prints the page (the print stylesheet hides the video and keeps the thumbnails).
 * The clip plays one camera's parts one after the other: a scan's time in it is
 * (clip offset + frame - the part's first frame) / fps. No inline code (strict CSP). */
(function () {
  "use strict";

  var video = document.getElementById("evidence-video");

  Array.prototype.forEach.call(document.querySelectorAll(".clip"), function (clip) {
    var fps = Number(clip.getAttribute("data-fps"));
    var first = Number(clip.getAttribute("data-start-frame"));
    var offset = Number(clip.getAttribute("data-offset-frames"));
    var primary = clip.getAttribute("data-primary") === "true";
    Array.prototype.forEach.call(clip.querySelectorAll(".scan-seek"), function (button) {
      // Only the first camera's clips are in the video; the others' thumbnails do not seek.
      if (!video || !primary || !(fps > 0)) { button.disabled = true; return; }
      button.addEventListener("click", function () {
        var frame = Number(button.getAttribute("data-frame"));
        // The middle of the frame: a seek lands on it, not on the boundary before it.
        video.currentTime = (offset + frame - first + 0.5) / fps;
        video.pause();
        video.scrollIntoView({ block: "nearest" });
        Array.prototype.forEach.call(document.querySelectorAll(".evidence-scan.current"), function (el) {
          el.classList.remove("current");
        });
        button.parentNode.classList.add("current");
      });
    });
  });

  var printButton = document.getElementById("print-button");
  if (printButton) printButton.addEventListener("click", function () { window.print(); });

  // Times in the warehouse's local time, as on the order timeline.
  var title = document.getElementById("order-title");
  var offsetAttr = title ? title.getAttribute("data-utc-offset") : null;
  var minutes = offsetAttr !== null && offsetAttr !== "" ? Number(offsetAttr) : NaN;
  function pad(n, w) { n = String(n); while (n.length < (w || 2)) n = "0" + n; return n; }
  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (el) {
    var iso = el.getAttribute("datetime");
    var ms = Date.parse(iso);
    if (isNaN(ms) || isNaN(minutes)) return;
    var w = new Date(ms + minutes * 60000);
    el.title = iso;
    el.textContent = w.getUTCFullYear() + "-" + pad(w.getUTCMonth() + 1) + "-" + pad(w.getUTCDate()) + " " +
      pad(w.getUTCHours()) + ":" + pad(w.getUTCMinutes()) + ":" + pad(w.getUTCSeconds()) + "." +
      pad(w.getUTCMilliseconds(), 3);
  });
})();
