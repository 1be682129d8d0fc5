// Package httpbody reads request bodies under a size limit.
package httpbody

import (
	"io"
	"net/http"
)

// maxAhead is the most Read sets aside for a body before reading it.
const maxAhead = 256 << 10

// Read reads r's body whole, as io.ReadAll(http.MaxBytesReader(w, r.Body, limit)) does,
// including its *http.MaxBytesError past the limit. When the request announces its length
// within the limit, the buffer is that size from the start: io.ReadAll starts at 512 bytes
// and doubles, which for a batch of a hundred messages means eight allocations, each
// cleared and copied into, instead of one.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	size := int64(512)
	if n := r.ContentLength; n > 0 && n <= limit {
		// One byte more, so that the read that sees the end does not need a larger buffer.
		// At most maxAhead: a client that announces a large body and sends it slowly (or
		// never) gets no more memory before its bytes arrive than that.
		size = min(n, maxAhead) + 1
	}
	b := make([]byte, 0, size)
	for {
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			// The body is longer than announced (or than 512 bytes): let append grow it.
			b = append(b, 0)[:len(b)]
		}
	}
}
