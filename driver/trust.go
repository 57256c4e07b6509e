package driver

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// AllowUntrustedEnv, set to 1, lets Open load an engine library that
// CheckTrusted refuses (as --allow-untrusted-lib does).
const AllowUntrustedEnv = "LMDRIVE_ALLOW_UNTRUSTED_LIB"

// CheckTrusted refuses an engine library that someone other than this user
// (or root) could have put there or changed: loading it runs its code with
// this user's rights. The file and every folder above it must belong to
// this user or root; the file must not be writable by others, its folder
// not writable by everyone, and a folder further up only with the sticky
// bit (as /tmp has), which keeps others from renaming what they do not own.
// A symbolic link is checked where it is and where it points.
func CheckTrusted(path string) error {
	uid := uint32(os.Geteuid())
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	paths := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		paths = append(paths, real)
	}
	for _, p := range paths {
		if err := checkTrustedPath(p, uid); err != nil {
			return fmt.Errorf("engine library %s: %w; fix the ownership or permissions (chown, chmod o-w), move it to a folder only you can write, or allow it with --allow-untrusted-lib or %s=1",
				path, err, AllowUntrustedEnv)
		}
	}
	return nil
}

func checkTrustedPath(path string, uid uint32) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := ownedByUs(path, st, uid); err != nil {
		return err
	}
	if st.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("the file %s is writable by every user", path)
	}
	dir := filepath.Dir(path)
	for first := true; ; first = false {
		st, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if err := ownedByUs(dir, st, uid); err != nil {
			return err
		}
		if st.Mode().Perm()&0o002 != 0 && (first || st.Mode()&os.ModeSticky == 0) {
			return fmt.Errorf("the folder %s is writable by every user", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

func ownedByUs(path string, st os.FileInfo, uid uint32) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if sys.Uid != uid && sys.Uid != 0 {
		return fmt.Errorf("%s belongs to user %d, not to you (user %d) or root", path, sys.Uid, uid)
	}
	return nil
}
