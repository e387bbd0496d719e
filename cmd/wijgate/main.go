// Command wijgate is Caddy with the wijgate modules: the same command line
// (run, validate, adapt, reload, list-modules, ...) plus operator commands
// for accounts. It also registers the development modules (the eHerkenning
// simulator and the demo app) that `make run` serves; they exist in a
// configuration only where an operator names them.
package main

import (
	_ "time/tzdata"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/wijtechniek/wijgate/caddymodule"
	_ "github.com/wijtechniek/wijgate/devmodules"
)

func main() {
	// Usage lines and help name the binary people actually run.
	caddy.CustomBinaryName = "wijgate"
	caddy.CustomLongDescription = `wijgate is the front door of Wij Techniek's web applications: the Caddy
web server with wijgate's modules. It has Caddy's commands (run, validate,
adapt, reload, stop, list-modules, ...) and the operator commands
'wijgate accounts', 'wijgate orgs', 'wijgate store copy', 'wijgate backup'
and 'wijgate restore'.

	$ wijgate run --config Caddyfile
	$ wijgate accounts list

The Caddyfile reference is in the README.`
	caddycmd.Main()
}
