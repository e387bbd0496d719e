// Submits the eHerkenning request form at once; without JavaScript the
// person presses the button.
document.addEventListener("DOMContentLoaded", function () {
  var f = document.getElementById("saml-post");
  if (f) { f.submit(); }
});
