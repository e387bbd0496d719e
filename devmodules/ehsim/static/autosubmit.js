// Submits the HTTP-POST binding form; the page's button does the same
// without JavaScript.
(function () {
  var f = document.getElementById("autosubmit");
  if (f) { f.submit(); }
})();
