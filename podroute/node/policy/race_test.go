//go:build race

package policy

// raceEnabled: the race detector slows the reference test tenfold, so it
// checks fewer scenarios (the plain run checks all).
const raceEnabled = true
