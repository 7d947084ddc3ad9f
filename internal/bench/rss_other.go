//go:build !linux

package bench

// peakRSS is 0 where the bench does not know how to ask.
func peakRSS() uint64 { return 0 }

func resetPeakRSS() {}

func sincePeakRSS() uint64 { return 0 }
