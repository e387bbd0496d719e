package devmodules

import (
	"testing"

	_ "github.com/wijtechniek/wijgate/caddymodule" // the simulator keeps its keys in the wijgate app
	"github.com/wijtechniek/wijgate/internal/adapttest"
)

// TestCaddyfileAdapt checks the `eherkenning_simulator` and
// `wijgate_demo_app` directives against testdata/caddyfile_adapt: what the
// adapter makes of each Caddyfile, and what validating that JSON says.
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, "testdata/caddyfile_adapt")
}
