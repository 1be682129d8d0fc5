package jsonscan_test

import "testing"

// FuzzAgainstEncodingJSON is the differential test that makes jsonscan safe to use in place
// of encoding/json: on any input the two agree on validity, on the error (text and offset)
// and on the decoded value, whether the input is read whole, read as the first value of a
// stream, or walked member by member. Its seed corpus is in testdata/fuzz; the table in
// scan_test.go runs the same comparisons on every hand-written case.
func FuzzAgainstEncodingJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		compareValidate(t, data)
		compareDecode(t, data)
		compareStream(t, data)
		compareWalk(t, data)
	})
}
