//go:build !linux

package bench

// peakRSS is 0 where the bench does not know how to ask.
func peakRSS() uint64 { return 0 }

func resetPeakRSS() {}

func sincePeakRSS() uint64 { return 0 }

// OwnPeakRSS is this process's own peak resident set size; 0 here: the
// system does not say.
func OwnPeakRSS() uint64 { return sincePeakRSS() }
