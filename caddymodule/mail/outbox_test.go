package mail

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOutboxSendWritesPrivateEML(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o := &Outbox{Dir: dir, From: testFrom}
	if err := o.Send(t.Context(), sample); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("Dir mode %o, want 700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".eml") {
		t.Fatalf("Dir holds %v, want one .eml file", entries)
	}
	path := filepath.Join(dir, entries[0].Name())
	info, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %o, want 600", perm)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, raw, sampleWire)
}

func TestOutboxDefaultFrom(t *testing.T) {
	o := &Outbox{Dir: t.TempDir()}
	if err := o.Send(t.Context(), Message{To: "jan@example.nl", Subject: "s", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(o.Dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("entries %v, %v", entries, err)
	}
	raw, err := os.ReadFile(filepath.Join(o.Dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "\r\nFrom: \"Wij Techniek\" <noreply@localhost>\r\n") {
		t.Errorf("message does not come from DefaultOutboxFrom:\n%s", raw)
	}
}

func TestOutboxListAndGet(t *testing.T) {
	o := &Outbox{Dir: t.TempDir(), From: testFrom}
	if list, err := o.List(); err != nil || len(list) != 0 {
		t.Fatalf("empty outbox: List = %v, %v", list, err)
	}
	subjects := []string{"eerste", "tweede", "derde — één"}
	for _, s := range subjects {
		if err := o.Send(t.Context(), Message{To: "Jan <jan@example.nl>", Subject: s, Text: "code " + s, HTML: "<p>" + s + "</p>"}); err != nil {
			t.Fatal(err)
		}
	}
	// Files that are not outbox messages are left alone.
	for _, name := range []string{"notes.txt", "x.eml", "20260101T000000000000000-0123456789abcdef.tmp"} {
		if err := os.WriteFile(filepath.Join(o.Dir, name), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	list, err := o.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(subjects) {
		t.Fatalf("List has %d messages, want %d", len(list), len(subjects))
	}
	for i, m := range list {
		want := subjects[len(subjects)-1-i] // newest first
		if m.Subject != want || m.Text != "code "+want || m.HTML != "<p>"+want+"</p>" || m.To != "\"Jan\" <jan@example.nl>" {
			t.Errorf("List[%d] = %+v, want subject %q", i, m, want)
		}
		if time.Since(m.Date).Abs() > time.Minute {
			t.Errorf("List[%d].Date = %v", i, m.Date)
		}
		got, err := o.Get(m.ID)
		if err != nil {
			t.Fatalf("Get(%q): %v", m.ID, err)
		}
		if got != m {
			t.Errorf("Get(%q) = %+v, want %+v", m.ID, got, m)
		}
	}
}

func TestOutboxGetRejects(t *testing.T) {
	parent := t.TempDir()
	o := &Outbox{Dir: filepath.Join(parent, "outbox"), From: testFrom}
	if err := o.Send(t.Context(), Message{To: "jan@example.nl", Subject: "s", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	// A well-formed .eml just outside Dir, which traversal would reach.
	list, err := o.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	stolen, err := os.ReadFile(filepath.Join(o.Dir, list[0].ID+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "x.eml"), stolen, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, id string }{
		{"parent directory", "../x"},
		{"absolute path", filepath.Join(parent, "x")},
		{"valid id plus traversal", list[0].ID + "/../../x"},
		{"id with extension", list[0].ID + ".eml"},
		{"empty", ""},
		{"unknown but well-formed", "20260101T000000000000000-0123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := o.Get(tt.id)
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Get(%q) = %+v, %v; want an error wrapping fs.ErrNotExist", tt.id, m, err)
			}
		})
	}
}

func TestOutboxSendRejects(t *testing.T) {
	tests := []struct {
		name string
		o    Outbox
		ctx  func() context.Context
		m    Message
		is   error
	}{
		{"header injection in To", Outbox{From: testFrom}, context.Background, Message{To: "jan@example.nl\nBcc: x@example.com", Subject: "s", Text: "t"}, ErrInvalidMessage},
		{"header injection in From", Outbox{From: "a@example.nl\r\nBcc: x@example.com"}, context.Background, Message{To: "jan@example.nl", Subject: "s", Text: "t"}, ErrInvalidMessage},
		{"cancelled context", Outbox{From: testFrom}, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, Message{To: "jan@example.nl", Subject: "s", Text: "t"}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.Dir = t.TempDir()
			if err := o.Send(tt.ctx(), tt.m); !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if entries, _ := os.ReadDir(o.Dir); len(entries) != 0 {
				t.Errorf("files written: %v", entries)
			}
		})
	}
}

func TestOutboxNeedsDir(t *testing.T) {
	o := &Outbox{}
	if err := o.Send(t.Context(), Message{To: "jan@example.nl", Subject: "s", Text: "t"}); err == nil || !strings.Contains(err.Error(), "Dir is empty") {
		t.Fatalf("err = %v, want one about the empty Dir", err)
	}
}
