package proccpu

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A worker of nginx: the command name holds a space, a colon and parentheses.
	line := "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194624 1200 0 0 0 731 288 0 0 20 0 1 0 5000 12345678 900 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	pgrp, user, sys, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if pgrp != 4241 || user != 7310*time.Millisecond || sys != 2880*time.Millisecond {
		t.Errorf("pgrp %d, user %s, sys %s; want 4241, 7.31s, 2.88s", pgrp, user, sys)
	}
	for _, bad := range []string{"", "4242 nginx S 1", "4242 (nginx) S 4241 x 4241 0 -1 4194624 1200 0 0 0 731 288", "4242 (nginx) S 4241 4241"} {
		if _, _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) took it", bad)
		}
	}
}

func TestGroupCountsThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	pgid := syscall.Getpgrp()
	before, ok := Group(pgid)
	if !ok {
		t.Fatal("no figures from /proc")
	}
	// Spin until the kernel has counted at least two ticks more for this group.
	x := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		for i := 0; i < 1_000_000; i++ {
			x += i
		}
		if now, _ := Group(pgid); now.Total() >= before.Total()+2*Tick {
			return
		}
	}
	t.Fatalf("the group's CPU time did not grow in 5 s of spinning (%d)", x)
}

func TestPer(t *testing.T) {
	d := Times{User: 880 * time.Millisecond, Sys: 960 * time.Millisecond}.Per(100_000)
	if got := d.String(); got != "18.4 (8.8 + 9.6)" {
		t.Errorf("got %q", got)
	}
	if (Times{User: time.Second}).Per(0) != (Times{}) {
		t.Error("no requests must give no time")
	}
}
