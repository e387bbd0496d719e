package caddymodule

// The integration tests start the eHerkenning simulator from their
// Caddyfiles; the binary registers it the same way, in cmd/wijgate.
import _ "github.com/wijtechniek/wijgate/devmodules"
