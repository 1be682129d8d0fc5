package httpbody

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	long := strings.Repeat("x", 3000)
	for _, tc := range []struct {
		name     string
		body     string
		length   int64 // the announced Content-Length; -1 for none
		limit    int64
		want     string
		tooLarge bool
	}{
		{name: "announced", body: long, length: 3000, limit: 4000, want: long},
		{name: "not announced", body: long, length: -1, limit: 4000, want: long},
		{name: "empty", body: "", length: 0, limit: 10, want: ""},
		{name: "at the limit", body: long, length: 3000, limit: 3000, want: long},
		{name: "over the limit, announced", body: long, length: 3000, limit: 2999, tooLarge: true},
		{name: "over the limit, not announced", body: long, length: -1, limit: 100, tooLarge: true},
		// A sender that announces less than it sends is read like any other: the limit is
		// what counts, not the announcement.
		{name: "longer than announced", body: long, length: 10, limit: 4000, want: long},
		{name: "longer than announced, over the limit", body: long, length: 10, limit: 2000, tooLarge: true},
		// Past maxAhead the buffer grows as the bytes come.
		{name: "announced past the buffer set aside", body: strings.Repeat("z", maxAhead+3000), length: maxAhead + 3000, limit: 1 << 20, want: strings.Repeat("z", maxAhead+3000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(tc.body)))
			r.ContentLength = tc.length
			got, err := Read(httptest.NewRecorder(), r, tc.limit)
			var mbe *http.MaxBytesError
			if tc.tooLarge {
				if !errors.As(err, &mbe) || mbe.Limit != tc.limit {
					t.Fatalf("err = %v, want a MaxBytesError with limit %d", err, tc.limit)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("Read = %d bytes, %v; want %d bytes", len(got), err, len(tc.want))
			}
		})
	}
}

// errAfter fails after its data, as a connection that breaks mid-body.
type errAfter struct{ r io.Reader }

func (e errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func TestReadError(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(errAfter{bytes.NewReader([]byte("abc"))}))
	r.ContentLength = 10
	if _, err := Read(httptest.NewRecorder(), r, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
}

func TestReadAllocations(t *testing.T) {
	body := bytes.Repeat([]byte("y"), 60000)
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	w := httptest.NewRecorder()
	rd := bytes.NewReader(body)
	allocs := testing.AllocsPerRun(20, func() {
		rd.Reset(body)
		r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
		if b, err := Read(w, r, 1<<20); err != nil || len(b) != len(body) {
			t.Fatalf("Read = %d bytes, %v", len(b), err)
		}
	})
	// The buffer and the limit's reader; io.ReadAll would take about ten.
	if allocs > 3 {
		t.Fatalf("%v allocations per read of an announced body, want at most 3", allocs)
	}
}
