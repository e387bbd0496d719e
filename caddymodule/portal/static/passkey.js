// Passkeys: a form marked data-passkey asks the server for a ceremony
// (data-begin), lets the browser make or use a passkey, and posts the
// answer in its hidden "credential" field. The forms stay hidden where
// the browser has no passkeys. On the login page the passkeys are also
// offered in the email field's autofill (conditional mediation).
(function () {
  "use strict";

  function fromB64(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    var bin = atob(s + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // publicKey turns the server's options into what the browser takes.
  function publicKey(options) {
    var pk = options.publicKey;
    pk.challenge = fromB64(pk.challenge);
    if (pk.user) { pk.user.id = fromB64(pk.user.id); }
    (pk.excludeCredentials || []).concat(pk.allowCredentials || []).forEach(function (c) { c.id = fromB64(c.id); });
    return pk;
  }

  // answer is the credential as the server reads it.
  function answer(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults(),
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      if (r.userHandle) { out.response.userHandle = toB64(r.userHandle); }
    }
    return JSON.stringify(out);
  }

  function begin(form, mediation) {
    var body = new URLSearchParams({ csrf: form.elements.csrf.value });
    if (mediation) { body.set("mediation", mediation); }
    return fetch(form.dataset.begin, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("begin: " + r.status); } return r.json(); });
  }

  // pending aborts the conditional request when the person presses the
  // button instead.
  var pending = null;

  function run(form, mediation) {
    if (pending) { pending.abort(); pending = null; }
    var error = form.querySelector("[data-passkey-error]");
    var ceremony = "";
    return begin(form, mediation).then(function (options) {
      ceremony = options.ceremony;
      if (form.dataset.passkey === "register") {
        return navigator.credentials.create({ publicKey: publicKey(options) });
      }
      var req = { publicKey: publicKey(options) };
      if (mediation) {
        pending = new AbortController();
        req.mediation = mediation;
        req.signal = pending.signal;
      }
      return navigator.credentials.get(req);
    }).then(function (cred) {
      form.elements.credential.value = answer(cred);
      if (form.elements.ceremony) { form.elements.ceremony.value = ceremony; }
      form.submit();
    }).catch(function (err) {
      // An autofill offer that ends unused or cannot start is no failure:
      // the person did not ask for it.
      if (mediation || (err && err.name === "AbortError")) { return; }
      if (error) { error.hidden = false; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential) { return; }
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      form.hidden = false;
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        if (form.dataset.passkey === "register" && !form.elements.name.value.trim()) {
          form.submit(); // the server names what is missing
          return;
        }
        run(form, "");
      });
      if (form.dataset.passkey === "login" && PublicKeyCredential.isConditionalMediationAvailable) {
        PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
          if (ok) { run(form, "conditional"); }
        });
      }
    });
  });
})();
