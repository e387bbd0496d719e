package caddymodule

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCaddyfileProxyOptions(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser(`wijgate {
		app live
		websocket
		allow_encoded_slashes
	}`)
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if h.App != "live" || !h.WebSocket || !h.AllowEncodedSlashes {
		t.Fatalf("parsed %+v", h)
	}

	var off Handler
	if err := off.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`wijgate live`)); err != nil {
		t.Fatal(err)
	}
	if off.WebSocket || off.AllowEncodedSlashes {
		t.Fatal("WebSockets or encoded slashes are allowed by default")
	}

	for _, bad := range []string{"wijgate {\n app live\n websocket on\n}", "wijgate {\n app live\n allow_encoded_slashes yes\n}"} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
