// Package demodefs holds the definitions of causeway demo, so that the binary carries them
// and the demo runs from any directory.
package demodefs

import "embed"

// Files are the demo's definition files.
//
//go:embed *.yaml
var Files embed.FS
