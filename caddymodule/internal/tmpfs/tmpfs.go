// Package tmpfs gives a test a small filesystem of its own, which it can
// fill to the last byte without touching the machine's disks.
package tmpfs

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// Mount mounts a tmpfs of size bytes on a fresh directory and unmounts it
// when the test ends (register it before anything that must be stopped
// before the unmount). Mounting needs root: the test is skipped for
// anyone else, and fails when root cannot mount.
func Mount(t testing.TB, size uint64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs for the full-disk test (CI runs as root)")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.FormatUint(size, 10)); err != nil {
		t.Fatalf("mounting a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// Fill takes the free space of the filesystem holding dir, all but leave
// bytes, with one allocated file, and returns what gives it back.
func Fill(t testing.TB, dir string, leave uint64) (release func()) {
	t.Helper()
	free := Free(t, dir)
	if free <= leave {
		t.Fatalf("only %d bytes free in %s, cannot leave %d", free, dir, leave)
	}
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(free-leave)); err != nil {
		t.Fatalf("filling %s: %v", dir, err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
}

// Free is the space left on the filesystem holding dir.
func Free(t testing.TB, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}
