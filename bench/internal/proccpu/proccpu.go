// Package proccpu reads the CPU time of processes from /proc, for the benchmarks: on two
// cores the load generator, the server measured and what it calls share the machine, so a
// server that saves a microsecond gains only part of it in throughput, and a slow spell of
// the machine moves every throughput. The CPU time a server spends per request or message
// is the steadier figure beside them.
package proccpu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// userHZ is the unit of the times in /proc/PID/stat: USER_HZ, 100 on every Linux
// architecture Go supports, whatever the kernel's own tick.
const userHZ = 100

// Tick is the unit of the times /proc gives.
const Tick = time.Second / userHZ

// Times is the CPU time a process or a process group used, split as the kernel counts it.
type Times struct {
	User, Sys time.Duration
}

// Total is the user and system time together.
func (t Times) Total() time.Duration { return t.User + t.Sys }

// Sub is the time used since before.
func (t Times) Sub(before Times) Times {
	return Times{User: t.User - before.User, Sys: t.Sys - before.Sys}
}

// Process is the CPU time of process pid, threads included; ok is false where /proc does
// not tell (not Linux, or no such process).
func Process(pid int) (Times, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Times{}, false
	}
	_, user, sys, err := parseStat(b)
	if err != nil {
		return Times{}, false
	}
	return Times{User: user, Sys: sys}, true
}

// Group adds up the CPU time of every live process of group pgid, threads included.
// ok is false where /proc does not tell (not Linux). A process of the group that exited
// takes its time with it: the servers measured here keep theirs for the whole run.
func Group(pgid int) (Times, bool) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return Times{}, false
	}
	var total Times
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited since the listing
		}
		pgrp, user, sys, err := parseStat(b)
		if err != nil || pgrp != pgid {
			continue
		}
		total.User += user
		total.Sys += sys
	}
	return total, true
}

// parseStat reads the process group and the user and system time of the process itself
// (not of its waited-for children) from the text of /proc/PID/stat. The command name, in
// parentheses, may hold spaces and parentheses of its own ("(nginx: worker process)"), so
// the fields are counted from the last ')'.
func parseStat(b []byte) (pgrp int, user, sys time.Duration, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, errors.New("stat: no command name")
	}
	// After the name: state (field 3), ppid (4), pgrp (5), … utime (14), stime (15).
	fields := bytes.Fields(b[i+1:])
	const first = 3
	if len(fields) < 15-first+1 {
		return 0, 0, 0, fmt.Errorf("stat: %d fields after the command name", len(fields))
	}
	num := func(field int) (int64, error) {
		return strconv.ParseInt(string(fields[field-first]), 10, 64)
	}
	g, err1 := num(5)
	u, err2 := num(14)
	s, err3 := num(15)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, 0, fmt.Errorf("stat: %w", err)
	}
	return int(g), time.Duration(u) * Tick, time.Duration(s) * Tick, nil
}

// Per is the CPU time of each of n operations (requests, messages) that took t.
func (t Times) Per(n int64) Times {
	if n <= 0 {
		return Times{}
	}
	return Times{User: t.User / time.Duration(n), Sys: t.Sys / time.Duration(n)}
}

// String writes the time per request in microseconds, the total first: "18.4 (8.8 + 9.6)".
func (t Times) String() string {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return fmt.Sprintf("%.1f (%.1f + %.1f)", us(t.User+t.Sys), us(t.User), us(t.Sys))
}
