package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadRefusesAFileOthersMayRead(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o600, true}, {0o400, true}, {0o640, false}, {0o644, false}, {0o604, false}, {0o660, false}, {0o700, true}, {0o620, false},
	} {
		path := filepath.Join(dir, "seal.key")
		if err := os.WriteFile(path, []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		b, err := Read(path, "seal key")
		if tc.ok {
			if err != nil || string(b) != "secret\n" {
				t.Errorf("mode %04o: %q, %v", tc.mode, b, err)
			}
			continue
		}
		var exposed *ExposedError
		if !errors.As(err, &exposed) || exposed.Mode.Perm() != tc.mode {
			t.Fatalf("mode %04o: %v, want an *ExposedError", tc.mode, err)
		}
		if want := "run: chmod 600 " + path; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "seal key") {
			t.Errorf("mode %04o: %q does not say %q", tc.mode, err, want)
		}
	}
	if _, err := Read(filepath.Join(dir, "none"), "tokens file"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	var tooLarge *TooLargeError
	if _, err := Read(big, "tokens file"); !errors.As(err, &tooLarge) {
		t.Errorf("a file over the bound: %v", err)
	}
}
