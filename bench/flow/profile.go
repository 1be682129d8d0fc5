package main

import (
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of the whole benchmark to path (BENCH_CPUPROFILE); the
// file is complete when the process ends normally.
func startProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		_ = pprof.StartCPUProfile(f)
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
}

var stopProfile = func() {}
