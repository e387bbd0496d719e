package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/internal/tmpfs"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// spaceLog records the store's reports of full and writable.
type spaceLog struct {
	mu     sync.Mutex
	events []Space
}

func (l *spaceLog) add(sp Space) { l.mu.Lock(); l.events = append(l.events, sp); l.mu.Unlock() }

func (l *spaceLog) fulls() (full, writable int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Full {
			full++
		} else {
			writable++
		}
	}
	return full, writable
}

// bigValue spans many pages, so writing it needs space the filesystem
// has to find: on a full tmpfs, badger's mapped log would fault.
var bigValue = bytes.Repeat([]byte("x"), 256<<10)

// TestFullDiskRefusesWrites fills the store's filesystem to the last byte
// while the store is open: writes are refused with ErrStorageFull before
// badger maps a page (without the guard the process dies of SIGBUS),
// reads go on, the change is reported once, and writes resume by
// themselves when space returns.
func TestFullDiskRefusesWrites(t *testing.T) {
	mnt := tmpfs.Mount(t, 48<<20)
	var log spaceLog
	st, err := Open(Options{Dir: filepath.Join(mnt, "store"), Reserve: 16 << 20, OnSpaceChange: log.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetSecret("kept", []byte("before")); err != nil {
		t.Fatal(err)
	}

	release := tmpfs.Fill(t, mnt, 0)
	for range 3 {
		if err := st.SetSecret("big", bigValue); !errors.Is(err, storage.ErrStorageFull) {
			t.Fatalf("write on a full disk: %v, want ErrStorageFull", err)
		}
	}
	if got, err := st.Secret("kept", nil); err != nil || string(got) != "before" {
		t.Fatalf("read on a full disk: %q, %v", got, err)
	}
	if sp := st.Space(); !sp.Full || sp.Free != 0 || sp.Reserve != 16<<20 {
		t.Fatalf("space on a full disk: %+v", sp)
	}
	if full, writable := log.fulls(); full != 1 || writable != 0 {
		t.Fatalf("reported %d × full, %d × writable; want one full", full, writable)
	}

	release()
	if err := st.SetSecret("big", bigValue); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	if sp := st.Space(); sp.Full {
		t.Fatalf("still full after space returned: %+v", sp)
	}
	if full, writable := log.fulls(); full != 1 || writable != 1 {
		t.Fatalf("reported %d × full, %d × writable; want one of each", full, writable)
	}
}

// TestOpenOnFullDisk opens a store whose filesystem is full: it opens
// read-only (opened for writing, badger would write its new log into the
// missing space), serves reads, refuses writes, and reopens for writing
// once there is space again.
func TestOpenOnFullDisk(t *testing.T) {
	mnt := tmpfs.Mount(t, 48<<20)
	dir := filepath.Join(mnt, "store")
	st, err := Open(Options{Dir: dir, Reserve: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSecret("kept", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	release := tmpfs.Fill(t, mnt, 0)
	var log spaceLog
	st, err = Open(Options{Dir: dir, Reserve: 16 << 20, OnSpaceChange: log.add})
	if err != nil {
		t.Fatalf("opening on a full disk: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if sp := st.Space(); !sp.Full || !sp.ReadOnly {
		t.Fatalf("space after opening on a full disk: %+v", sp)
	}
	if got, err := st.Secret("kept", nil); err != nil || string(got) != "before" {
		t.Fatalf("read on a full disk: %q, %v", got, err)
	}
	if err := st.SetSecret("big", bigValue); !errors.Is(err, storage.ErrStorageFull) {
		t.Fatalf("write on a full disk: %v, want ErrStorageFull", err)
	}

	release()
	if err := st.SetSecret("big", bigValue); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	if sp := st.Space(); sp.Full || sp.ReadOnly {
		t.Fatalf("space after it returned: %+v", sp)
	}
	if got, err := st.Secret("kept", nil); err != nil || string(got) != "before" {
		t.Fatalf("read after reopening: %q, %v", got, err)
	}
	if full, writable := log.fulls(); full != 1 || writable != 1 {
		t.Fatalf("reported %d × full, %d × writable; want one of each", full, writable)
	}
}

// TestCloseOnFullDisk closes a store holding unflushed writes on a full
// disk: the flush would write a new table through a memory map and die of
// SIGBUS, so the store is left open and says why; its log keeps the writes.
func TestCloseOnFullDisk(t *testing.T) {
	mnt := tmpfs.Mount(t, 48<<20)
	st, err := Open(Options{Dir: filepath.Join(mnt, "store"), Reserve: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSecret("big", bigValue); err != nil {
		t.Fatal(err)
	}
	tmpfs.Fill(t, mnt, 0)
	if err := st.Close(); !errors.Is(err, storage.ErrStorageFull) {
		t.Fatalf("closing on a full disk: %v, want ErrStorageFull", err)
	}
}

// TestCloseOnNearlyFullDisk closes a store below its reserve but with room
// for the flush: it closes cleanly, so the next start, on the same nearly
// full disk, can open it read-only and read what was written.
func TestCloseOnNearlyFullDisk(t *testing.T) {
	mnt := tmpfs.Mount(t, 48<<20)
	dir := filepath.Join(mnt, "store")
	st, err := Open(Options{Dir: dir, Reserve: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSecret("big", bigValue); err != nil {
		t.Fatal(err)
	}
	tmpfs.Fill(t, mnt, 4<<20)
	if err := st.Close(); err != nil {
		t.Fatalf("closing below the reserve with room for the flush: %v", err)
	}
	st, err = Open(Options{Dir: dir, Reserve: 16 << 20})
	if err != nil {
		t.Fatalf("opening again below the reserve: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if got, err := st.Secret("big", nil); err != nil || !bytes.Equal(got, bigValue) || !st.Space().ReadOnly {
		t.Fatalf("read after opening read-only: %d bytes, %v, %+v", len(got), err, st.Space())
	}
}
