package main

import "errors"

// exitCoder is an error that asks for a specific process exit code. A command returns one
// when it has already printed what went wrong (validate's list of problems) and only the
// code is left to report.
type exitCoder interface {
	error
	ExitCode() int
}

// silentExit is an exitCoder with no message of its own.
type silentExit int

func (e silentExit) Error() string { return "" }

// ExitCode returns the code the process exits with.
func (e silentExit) ExitCode() int { return int(e) }

func asExitCoder(err error, target *exitCoder) bool { return errors.As(err, target) }
