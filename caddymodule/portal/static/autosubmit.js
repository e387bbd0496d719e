// Submits a form that only carries the person on (the eHerkenning request,
// or the way to it after logging in) at once; without JavaScript the
// person presses its button.
document.addEventListener("DOMContentLoaded", function () {
  var f = document.querySelector("form#saml-post, form[data-autosubmit]");
  if (f) { f.submit(); }
});
