package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// peakRSS is the process's peak resident set size so far, in bytes.
func peakRSS() uint64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return uint64(ru.Maxrss) * 1024 // KiB on Linux
}

// resetPeakRSS starts a new peak for sincePeakRSS (Linux 4.0 and later).
// The peak getrusage reports is not reset.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // an older kernel: sincePeakRSS gives the process's peak
}

// sincePeakRSS is the peak resident set size since resetPeakRSS, in bytes;
// 0 when the system does not say.
func sincePeakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kib, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0
		}
		return kib * 1024
	}
	return 0
}

// OwnPeakRSS is this process's own peak resident set size (VmHWM), in
// bytes; 0 when the system does not say. Unlike a child's rusage, which
// on Linux starts from its parent's peak at fork, it counts only what the
// process itself used since exec.
func OwnPeakRSS() uint64 { return sincePeakRSS() }
