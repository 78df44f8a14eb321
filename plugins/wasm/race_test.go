//go:build race

package wasm

// raceEnabled: the race detector's shadow memory grows the resident set
// with the heap's churn, so memory checks read the Go runtime's figures.
const raceEnabled = true
