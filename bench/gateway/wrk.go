package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// load is what one wrk run measured.
type load struct {
	requests     int64
	rps          float64
	p50, p99     time.Duration
	non2xx       int64
	socketErrors string // wrk's socket error counts, "" when all are 0
}

// runWrk drives url with wrk for d, sending the given headers, and parses what it printed.
func runWrk(ctx context.Context, wrk string, threads, conns int, d time.Duration, url string, headers map[string]string) (*load, error) {
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + wrkDuration(d), "--latency"}
	for k, v := range headers {
		args = append(args, "-H", k+": "+v)
	}
	args = append(args, url)
	cmd := exec.CommandContext(ctx, wrk, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s%s", strings.Join(cmd.Args, " "), err, errOut.String(), out.String())
	}
	l, err := parseWrk(out.String())
	if err != nil {
		return nil, fmt.Errorf("%w in wrk's output:\n%s", err, out.String())
	}
	return l, nil
}

// wrkDuration writes d as wrk's -d wants it: whole seconds, at least one.
func wrkDuration(d time.Duration) string {
	s := int64((d + time.Second/2) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10) + "s"
}

// parseWrk reads the figures out of wrk --latency's report:
//
//	  Latency Distribution
//	     50%  512.00us
//	     99%    2.31ms
//	  261530 requests in 5.00s, 41.90MB read
//	  Non-2xx or 3xx responses: 12
//	  Socket errors: connect 0, read 0, write 0, timeout 3
//	Requests/sec:  52299.46
func parseWrk(out string) (*load, error) {
	l := &load{}
	var haveRPS, have50, have99 bool
	inDist := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case line == "Latency Distribution":
			inDist = true
		case inDist && len(fields) == 2 && strings.HasSuffix(fields[0], "%"):
			d, err := parseWrkDuration(fields[1])
			if err != nil {
				return nil, err
			}
			switch fields[0] {
			case "50%", "50.000%":
				l.p50, have50 = d, true
			case "99%", "99.000%":
				l.p99, have99 = d, true
			}
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
			if err != nil {
				return nil, fmt.Errorf("requests/sec: %w", err)
			}
			l.rps, haveRPS = v, true
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("non-2xx responses: %w", err)
			}
			l.non2xx = n
		case strings.HasPrefix(line, "Socket errors:"):
			counts := strings.TrimSpace(strings.TrimPrefix(line, "Socket errors:"))
			for _, c := range strings.Split(counts, ",") {
				if f := strings.Fields(c); len(f) == 2 && f[1] != "0" {
					l.socketErrors = counts
				}
			}
		case len(fields) >= 4 && fields[1] == "requests" && fields[2] == "in":
			inDist = false
			if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
				l.requests = n
			}
		}
	}
	if !haveRPS || !have50 || !have99 {
		return nil, fmt.Errorf("no Requests/sec, 50%% or 99%% figure (was --latency given?)")
	}
	return l, nil
}

// parseWrkDuration reads a duration as wrk prints it: 512.00us, 2.31ms, 1.02s, 1.50m.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				break
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("%q is not a wrk duration", s)
}

// checkAnswer makes one request to url, as wrk will, and checks that the answer is 200 with
// a JSON body equal to want. When rejectWithout is set it also checks that the same request
// without the headers is refused with a 4xx: that the API key is really asked for.
func checkAnswer(ctx context.Context, url string, headers map[string]string, want map[string]any, rejectWithout bool) error {
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	get := func(h map[string]string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, nil, err
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}
	resp, body, err := get(headers)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil || !reflect.DeepEqual(got, want) {
		w, _ := json.Marshal(want)
		return fmt.Errorf("GET %s: body %s, want %s", url, bytes.TrimSpace(body), w)
	}
	if rejectWithout {
		resp, body, err := get(nil)
		if err != nil {
			return err
		}
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			return fmt.Errorf("GET %s without an API key: %s: %s, want 401 or another 4xx", url, resp.Status, bytes.TrimSpace(body))
		}
	}
	return nil
}
