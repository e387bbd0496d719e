// Package pack keeps long-lived cached records cheap for the garbage
// collector: strings decoded from JSON are a dozen small objects per
// record, and with every active account cached the collector's marking
// time grows with their number.
package pack

import "strings"

// Strings copies the strings behind ps into one new string and points each
// at its part of it, so they cost one object instead of len(ps).
func Strings(ps ...*string) {
	n := 0
	for _, p := range ps {
		n += len(*p)
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range ps {
		b.WriteString(*p)
	}
	all := b.String()
	for _, p := range ps {
		l := len(*p)
		*p, all = all[:l], all[l:]
	}
}
