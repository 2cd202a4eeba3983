package testsupport

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// FullDir makes writes of new files into dir fail the way a full disk
// does, keeping the files dir holds, and returns the error those writes
// fail with and a function that frees the space again. As root it mounts
// a 64 KiB tmpfs on dir (unmounted when the test ends), copies the files
// back in and fills it (ENOSPC). Where mounting is not allowed it replaces
// dir with a file, so that creating a file in it fails (ENOTDIR), says so,
// and free puts the directory and its files back.
func FullDir(t *testing.T, dir string) (failWith error, free func()) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	saved := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			saved[e.Name()] = b
		}
	}
	restore := func() {
		for name, b := range saved {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatalf("restore %s: %v", name, err)
			}
		}
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Logf("cannot mount a tmpfs (%v: %s); putting a file in place of %s instead", err, out, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return syscall.ENOTDIR, func() {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			restore()
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	restore()
	filler := filepath.Join(dir, ".filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	return syscall.ENOSPC, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
}
