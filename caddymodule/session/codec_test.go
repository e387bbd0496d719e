package session

import (
	"strings"
	"testing"
)

func TestCodec(t *testing.T) {
	oldKeys, newKeys := NewKeyPair(), NewKeyPair()
	oldCodec, err := NewCodec("wij", oldKeys)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewCodec("wij", newKeys, oldKeys)
	if err != nil {
		t.Fatal(err)
	}
	otherName, _ := NewCodec("other", oldKeys)
	id := NewID()
	valid, err := oldCodec.Encode(id)
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(valid)
	tampered[len(tampered)/2] ^= 1

	for _, tc := range []struct {
		name   string
		codec  *Codec
		value  string
		wantOK bool
	}{
		{"round trip", oldCodec, valid, true},
		{"old key decodes after rotation", rotated, valid, true},
		{"tampered value", oldCodec, string(tampered), false},
		{"wrong cookie name", otherName, valid, false},
		{"empty", oldCodec, "", false},
		{"garbage", oldCodec, "not-a-cookie", false},
		{"oversized", oldCodec, strings.Repeat("A", 5000), false},
		{"other keys", func() *Codec { c, _ := NewCodec("wij", NewKeyPair()); return c }(), valid, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.codec.Decode(tc.value)
			if tc.wantOK && (err != nil || got != id) {
				t.Fatalf("Decode = %q, %v; want %q", got, err, id)
			}
			if !tc.wantOK && err == nil {
				t.Fatalf("Decode accepted %q", tc.value)
			}
		})
	}

	t.Run("rotated codec encodes with the new key", func(t *testing.T) {
		v, err := rotated.Encode(id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oldCodec.Decode(v); err == nil {
			t.Fatal("old-only codec decoded a value made with the new key")
		}
	})
}

func TestCodecNonStringPayloadRejected(t *testing.T) {
	kp := NewKeyPair()
	c, _ := NewCodec("wij", kp)
	// A validly signed value whose ID is not of our shape is refused too.
	v, err := c.Encode("short")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(v); err == nil {
		t.Fatal("accepted a malformed ID")
	}
}

func TestParseKeyPair(t *testing.T) {
	kp := NewKeyPair()
	for _, tc := range []struct {
		name, in string
		wantOK   bool
	}{
		{"round trip", kp.String(), true},
		{"no colon", "abc", false},
		{"short hash key", "AAAA:" + strings.Split(kp.String(), ":")[1], false},
		{"not base64", "***:***", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeyPair(tc.in)
			if (err == nil) != tc.wantOK {
				t.Fatalf("ParseKeyPair(%q) err = %v", tc.in, err)
			}
		})
	}
}

func TestNewIDIsFreshAndLongEnough(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if len(id)*5 < 128 {
			t.Fatalf("ID %q carries fewer than 128 bits", id)
		}
		if seen[id] {
			t.Fatal("ID repeated")
		}
		seen[id] = true
	}
}
