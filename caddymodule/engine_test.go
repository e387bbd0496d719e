package caddymodule

import "github.com/wijtechniek/wijgate/caddymodule/storage/storagetest"

// The contract suite lists what an engine implements as this package's
// engine does; each list must be assignable to the other, so neither can
// gain a method the other lacks.
var (
	_ engine             = storagetest.Engine(nil)
	_ storagetest.Engine = engine(nil)
)
