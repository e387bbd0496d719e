// Command wijgate is Caddy with the wijgate modules: the same command line
// (run, validate, adapt, reload, list-modules, ...) plus operator commands
// for accounts.
package main

import (
	_ "time/tzdata"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/wijtechniek/wijgate/caddymodule"
)

func main() {
	caddycmd.Main()
}
