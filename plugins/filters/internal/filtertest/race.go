//go:build race

package filtertest

// RaceEnabled reports whether the race detector is on. sync.Pool drops
// items at random under it, so allocation counts are asserted only
// without it.
const RaceEnabled = true
