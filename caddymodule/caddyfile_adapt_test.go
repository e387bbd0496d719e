package caddymodule

import (
	"testing"

	"github.com/wijtechniek/wijgate/internal/adapttest"
)

// TestCaddyfileAdapt checks the `wijgate` global option and handler
// directive against testdata/caddyfile_adapt: what the adapter makes of
// each Caddyfile, and what validating that JSON says.
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, "testdata/caddyfile_adapt")
}
