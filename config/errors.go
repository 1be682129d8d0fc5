package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Position is a place in a definition file. Line and Col are 1-based; a Position with Line 0
// names only a file (or nothing at all), for problems that are not tied to one spot.
type Position struct {
	// File is the path of the file, as filepath.Join(loaded directory, relative path).
	File string
	// Line is the 1-based line, or 0 when the position is the whole file.
	Line int
	// Col is the 1-based column, counted in characters.
	Col int
}

// String formats the position as "file:line:col", the form editors and CI logs turn into a
// link. The parts that are unknown are left out.
func (p Position) String() string {
	switch {
	case p.Line <= 0:
		return p.File
	case p.Col <= 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// IsValid reports whether the position points at a line of a file.
func (p Position) IsValid() bool { return p.Line > 0 }

// comparePositions orders positions by file, then line, then column, which is the order in
// which a person reads the problems.
func comparePositions(a, b Position) int {
	if c := cmp.Compare(a.File, b.File); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Line, b.Line); c != 0 {
		return c
	}
	return cmp.Compare(a.Col, b.Col)
}

// Error is one problem in the definitions, at the position it was found.
type Error struct {
	// Pos is where the problem is.
	Pos Position
	// Msg says what the problem is, starting with the field it concerns when there is one.
	Msg string
}

// Error formats the problem as "file:line:col: message".
func (e *Error) Error() string {
	if s := e.Pos.String(); s != "" {
		return s + ": " + e.Msg
	}
	return e.Msg
}

// ErrorList is every problem found while loading. Load returns all of them at once, so that a
// person fixing a directory of definitions sees the whole list in one run instead of one
// problem per attempt.
type ErrorList []*Error

// Error formats the problems one per line, sorted by file, line and column.
func (l ErrorList) Error() string {
	sorted := slices.Clone(l)
	sorted.Sort()
	var b strings.Builder
	for i, e := range sorted {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Sort orders the list by file, line and column. Problems at the same position keep the
// order in which they were found, so the output is deterministic.
func (l ErrorList) Sort() {
	slices.SortStableFunc(l, func(a, b *Error) int { return comparePositions(a.Pos, b.Pos) })
}

// Err returns the list as an error, or nil when it is empty; a nil ErrorList stored in an
// error interface would otherwise not compare equal to nil.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// errorf builds an Error at pos.
func errorf(pos Position, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}
