package source

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
)

// Picking up files.
//
// A file source looks at a directory every interval. A file whose name matches and that
// has not changed for settle is read, turned into messages (one, or one per record), and
// the messages are stored on the bus; only then is the file moved to processed/ (or, when
// it cannot be read as its format, to failed/, with an ERRORS entry). A crash before the
// move reads the file again; its messages carry ids made of the file's name, modification
// time and record number, and are stored once.

// Watchers runs the file sources of a configuration.
type Watchers struct {
	opts    Options
	sources []*fileSource
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type fileSource struct {
	name string
	spec *Spec
	dir  string
}

// NewWatchers prepares the file sources of cfg.
func NewWatchers(cfg *config.Config, opts Options) *Watchers {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &Watchers{opts: opts}
	for _, r := range cfg.ByKind(Kind) {
		s := r.Spec.(*Spec)
		if s.File == nil {
			continue
		}
		sr, _ := cfg.Get(system.Kind, s.System)
		root := sr.Spec.(*system.Spec).Files.Root()
		w.sources = append(w.sources, &fileSource{name: r.Metadata.Name, spec: s, dir: filepath.Join(root, s.File.Dir)})
	}
	return w
}

// Start watches every directory in the background until Stop.
func (w *Watchers) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	for _, s := range w.sources {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for ctx.Err() == nil {
				if err := w.scan(ctx, s); err != nil && ctx.Err() == nil {
					w.opts.Logger.Warn("file source: scan failed", "source", s.name, "dir", s.dir, "err", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(s.spec.File.Interval):
				}
			}
		}()
	}
}

// Stop ends watching and waits for the file in progress.
func (w *Watchers) Stop() {
	if w.stop != nil {
		w.stop()
	}
	w.wg.Wait()
}

// scan handles every settled file of the directory, in name order.
func (w *Watchers) scan(ctx context.Context, s *fileSource) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	names := []string{}
	for _, e := range entries {
		// Hidden files are temporary ones being written (the file connector's among
		// them) unless the pattern asks for them.
		hidden := strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(s.spec.File.Pattern, ".")
		if e.Type().IsRegular() && !hidden {
			if ok, _ := filepath.Match(s.spec.File.Pattern, e.Name()); ok {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if ctx.Err() != nil {
			return nil
		}
		path := filepath.Join(s.dir, name)
		info, err := os.Stat(path)
		if err != nil || time.Since(info.ModTime()) < s.spec.File.Settle {
			continue // gone, or still being written
		}
		if err := w.handle(ctx, s, path, info); err != nil {
			w.opts.Logger.Warn("file source: file not stored; trying again later", "source", s.name, "file", name, "err", err)
		}
	}
	return nil
}

// handle turns one file into messages, stores them, and moves the file away.
func (w *Watchers) handle(ctx context.Context, s *fileSource, path string, info os.FileInfo) (err error) {
	name := filepath.Base(path)
	base := "file:" + s.name + ":" + name + "@" + strconv.FormatInt(info.ModTime().UnixNano(), 10)
	var data []byte
	var perr error
	if info.Size() > s.spec.File.MaxBytes {
		perr = fmt.Errorf("the file has %d bytes, more than maxBytes (%d)", info.Size(), s.spec.File.MaxBytes)
	} else if data, err = os.ReadFile(path); err != nil {
		return err
	}
	var records []any
	if perr == nil {
		if records, perr = parseRecords(s.spec.File.Format, data); perr != nil {
			perr = fmt.Errorf("the file is not %s: %w", s.spec.File.Format, perr)
		}
	}
	if perr != nil {
		// The entry keeps the start of the file; the whole file is in failed/.
		if len(data) > errorBodyBytes {
			data = data[:errorBodyBytes]
		}
		if err := keepError(ctx, w.opts.Bus, s.name, base, data, map[string]string{"file": name, "movedTo": filepath.Join(filepath.Dir(path), "failed")}, perr); err != nil {
			return err
		}
		w.opts.Metrics.count(s.name, "errors", 1)
		w.opts.Logger.Warn("file source: file kept in the ERRORS stream and moved to failed/", "source", s.name, "file", name, "reason", perr)
		return move(path, "failed")
	}
	fileInfo := map[string]any{"name": name, "size": info.Size(), "modified": info.ModTime().UTC().Format(time.RFC3339Nano)}
	var events []*message.Event
	for i, rec := range records {
		input := map[string]any{"file": fileInfo, "record": rec, "body": rec, "index": i}
		id := base + ":" + strconv.Itoa(i)
		ev, err := mapEvent(ctx, w.opts, s.spec, input, rec, id)
		if err != nil {
			raw, _ := expr.MarshalJSON(rec)
			if len(raw) > errorBodyBytes {
				raw = raw[:errorBodyBytes]
			}
			if kerr := keepError(ctx, w.opts.Bus, s.name, id, raw, map[string]string{"file": name, "record": strconv.Itoa(i)}, err); kerr != nil {
				return kerr
			}
			w.opts.Metrics.count(s.name, "errors", 1)
			continue
		}
		events = append(events, ev)
	}
	for start := 0; start < len(events); start += 1000 {
		if err := w.opts.Bus.PublishAll(ctx, events[start:min(start+1000, len(events))], w.opts.Node); err != nil {
			return err
		}
	}
	w.opts.Metrics.count(s.name, "accepted", len(events))
	w.opts.Logger.Info("file source: file stored", "source", s.name, "file", name, "messages", len(events), "errors", len(records)-len(events))
	return move(path, "processed")
}

// errorBodyBytes is how much of a file that cannot be read an ERRORS entry keeps.
const errorBodyBytes = 64 << 10

// parseRecords splits a file into the values that become messages.
func parseRecords(format string, data []byte) ([]any, error) {
	// A byte order mark, which Windows tools write, is not part of the first value or of
	// the first column's name.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	switch format {
	case "text":
		return []any{string(data)}, nil
	case "jsonl":
		var out []any
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for n := 1; sc.Scan(); n++ {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			v, err := expr.DecodeJSON(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			out = append(out, v)
		}
		return out, sc.Err()
	case "csv":
		r := csv.NewReader(bytes.NewReader(data))
		header, err := r.Read()
		if err != nil {
			if err == io.EOF {
				return nil, nil
			}
			return nil, err
		}
		var out []any
		for {
			row, err := r.Read()
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			rec := make(map[string]any, len(header))
			for i, col := range header {
				rec[col] = row[i]
			}
			out = append(out, rec)
		}
	}
	v, err := expr.DecodeJSON(data)
	if err != nil {
		return nil, err
	}
	return []any{v}, nil
}

// move puts a handled file into a subdirectory next to it. A file of the same name handled
// before is kept: the newer one gets a suffix.
func move(path, sub string) error {
	dir := filepath.Join(filepath.Dir(path), sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := filepath.Base(path)
	target := filepath.Join(dir, name)
	for n := 1; ; n++ {
		if _, err := os.Lstat(target); os.IsNotExist(err) {
			break
		}
		target = filepath.Join(dir, fmt.Sprintf("%s.%d", name, n))
	}
	return os.Rename(path, target)
}
