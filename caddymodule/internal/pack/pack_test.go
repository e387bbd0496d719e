package pack

import (
	"testing"
	"unsafe"
)

func TestStringsKeepValuesInOneAllocation(t *testing.T) {
	tests := []struct {
		name   string
		values []string
	}{
		{"none", nil},
		{"one", []string{"u-abc"}},
		{"with empties", []string{"", "piet@example.nl", "", "Piet Jänssen", ""}},
		{"all empty", []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]string, len(tt.values))
			ps := make([]*string, len(got))
			for i, v := range tt.values {
				// Fresh copies, so they do not already share memory.
				got[i] = string([]byte(v))
				ps[i] = &got[i]
			}
			Strings(ps...)
			var base, end uintptr
			for i, v := range tt.values {
				if got[i] != v {
					t.Fatalf("value %d = %q, want %q", i, got[i], v)
				}
				if len(v) == 0 {
					continue
				}
				p := uintptr(unsafe.Pointer(unsafe.StringData(got[i])))
				if base == 0 {
					base = p
				} else if p != end {
					t.Fatalf("value %d is not next to the one before it: the strings were not packed", i)
				}
				end = p + uintptr(len(v))
			}
		})
	}
}
