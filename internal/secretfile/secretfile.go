// Package secretfile reads files that hold secrets (the ledger's seal key,
// the API's tokens) and refuses one that others than its owner may read:
// a secret readable by the group or by everyone is no longer one.
package secretfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// MaxBytes bounds what Read reads: a tokens file of 10,000 tokens fits.
const MaxBytes = 4 << 20

// ExposedError is a secret file that its group or others may read (or
// write); Mode is its permission bits. Its message gives the chmod to run.
type ExposedError struct {
	Path string
	What string // "seal key", "tokens file"
	Mode fs.FileMode
}

func (e *ExposedError) Error() string {
	return fmt.Sprintf("%s %s has mode %04o: group or others may read it; run: chmod 600 %s",
		e.What, e.Path, uint32(e.Mode.Perm()), e.Path)
}

// TooLargeError is a secret file larger than MaxBytes.
type TooLargeError struct {
	Path string
	What string
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s %s is larger than %d bytes", e.What, e.Path, MaxBytes)
}

// Check refuses a secret file whose permissions give the group or others
// any access. On Windows, where permission bits say nothing of this, it
// checks nothing.
func Check(f *os.File, path, what string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return &ExposedError{Path: path, What: what, Mode: st.Mode()}
	}
	return nil
}

// Read opens the secret file at path, checks its permissions and reads it
// whole (at most MaxBytes). A missing file is an error wrapping
// fs.ErrNotExist.
func Read(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	defer f.Close()
	if err := Check(f, path, what); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	if len(b) > MaxBytes {
		return nil, &TooLargeError{Path: path, What: what}
	}
	return b, nil
}
