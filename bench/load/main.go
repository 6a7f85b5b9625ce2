// Command load is the load generator of bench/compare-serve.sh: it drives a
// lead service with plumb serve's routes (plumb serve itself, or
// bench/handserve) on a loopback address, with generated leads (the same
// as bench/compare.sh's), and prints one line of figures on stdout.
//
//	load -url URL -mode run -n N -c C
//	    N requests POST /v1/integrations/NAME/run, one lead each, C at a
//	    time; every answer must be 200 with outcome success. Prints
//	    "LEADS_PER_S P50_MS P99_MS CPU_US" (request latency; CPU_US is the
//	    service's CPU time per lead with -pid PID, else 0).
//	load -url URL -mode queue -n N -c C -batch B
//	    N leads POSTed as NDJSON bodies of B to /v1/integrations/NAME/leads,
//	    C bodies at a time (every answer a 202; a 429 queue_behind is sent
//	    again after its Retry-After), then GET /v1/queue every -poll until
//	    the queue is empty; then every lead is read back with GET
//	    /v1/leads/{id} (not timed; -verify=false skips it) and must be done
//	    with outcome success. Prints "ACCEPTED_PER_S COMPLETED_PER_S P50_MS
//	    P99_MS CPU_US": accepted/s from the first POST to the last 202,
//	    completed/s from the first POST to the empty queue, the latency of
//	    the POSTs, and the service's CPU time per lead until the queue was
//	    empty (with -pid). With -pid and -rss, a line on stderr: the
//	    service's RSS (and its anonymous part) every -rss while the run
//	    lasts, the peak of the anonymous part and the peak of all (VmHWM).
//
// It stops by itself: every request has a timeout and the whole run gives
// up after -deadline. Only loopback URLs are accepted.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func leadJSON(i int) []byte {
	return fmt.Appendf(nil, `{"email":"lead%d@gmail.example","phone":"(512) 555-%04d","ip_address":"203.0.113.%d","postal_code":"78701","state":"TX","age":%d}`,
		i, i%10000, i%250, 20+i%40)
}

type loader struct {
	hc     *http.Client
	base   string
	name   string
	pid    int  // the service's process, for its CPU time; 0: not measured
	verify bool // queue mode: read every lead back
	// retried counts bodies sent again after a 429 queue_behind
	retried atomic.Int64
}

// cpu is the service process's user+system CPU time so far, from
// /proc/PID/stat (in clock ticks of 10 ms, USER_HZ 100); 0 without -pid.
func (ld *loader) cpu() (time.Duration, error) {
	if ld.pid == 0 {
		return 0, nil
	}
	path := "/proc/" + strconv.Itoa(ld.pid) + "/stat"
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("cannot read " + path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("cannot read " + path)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

func (ld *loader) post(ctx context.Context, path, ctype string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", ld.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := ld.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// postBehind posts a body of leads, sending it again after the
// Retry-After of each 429 (the queue is behind).
func (ld *loader) postBehind(ctx context.Context, body []byte) (int, []byte, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, "POST", ld.base+"/v1/integrations/"+ld.name+"/leads", bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := ld.hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			return resp.StatusCode, b, err
		}
		ld.retried.Add(1)
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(time.Duration(max(wait, 1)) * time.Second):
		}
	}
}

// rss samples the service's resident set every d until stop is closed,
// then prints on stderr the samples (MiB: all of it, and in brackets its
// anonymous part — heap, stacks — without the files it maps), the peak of
// the anonymous part among them, and the peak of all of it (VmHWM).
func (ld *loader) rss(d time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	read := func(fields ...string) []float64 {
		out := make([]float64, len(fields))
		b, err := os.ReadFile("/proc/" + strconv.Itoa(ld.pid) + "/status")
		for _, line := range strings.Split(string(b), "\n") {
			for i, field := range fields {
				if v, ok := strings.CutPrefix(line, field+":"); ok && err == nil {
					kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
					out[i] = kb / 1024
				}
			}
		}
		return out
	}
	var samples []string
	peakAnon := 0.0
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			fmt.Fprintf(os.Stderr, "rss MiB every %s (anonymous): %s; peak anonymous %.1f MiB, peak (VmHWM) %.1f MiB; bodies sent again after a 429: %d\n",
				d, strings.Join(samples, " "), peakAnon, read("VmHWM")[0], ld.retried.Load())
			return
		case <-t.C:
			v := read("VmRSS", "RssAnon")
			peakAnon = max(peakAnon, v[1])
			samples = append(samples, fmt.Sprintf("%.1f(%.1f)", v[0], v[1]))
		}
	}
}

func (ld *loader) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", ld.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := ld.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// parallel runs f(0..n-1) on c goroutines; the first error stops it.
func parallel(ctx context.Context, n, c int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(p*float64(len(d))+0.5) - 1
	i = min(max(i, 0), len(d)-1)
	return float64(d[i]) / float64(time.Millisecond)
}

func (ld *loader) runSync(ctx context.Context, n, c int) error {
	lat := make([]time.Duration, n)
	cpu0, err := ld.cpu()
	if err != nil {
		return err
	}
	start := time.Now()
	err = parallel(ctx, n, c, func(ctx context.Context, i int) error {
		t0 := time.Now()
		status, b, err := ld.post(ctx, "/v1/integrations/"+ld.name+"/run", "application/json", leadJSON(i+1))
		lat[i] = time.Since(t0)
		if err != nil {
			return err
		}
		if status != 200 || !bytes.HasPrefix(b, []byte(`{"outcome":"success"`)) {
			return fmt.Errorf("lead %d: %d %.300s", i+1, status, b)
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	cpu1, err := ld.cpu()
	if err != nil {
		return err
	}
	fmt.Printf("%.1f %.3f %.3f %.1f\n", float64(n)/elapsed.Seconds(), percentile(lat, 0.50), percentile(lat, 0.99),
		float64((cpu1-cpu0)/time.Microsecond)/float64(n))
	return nil
}

func (ld *loader) runQueue(ctx context.Context, n, c, batch int, poll time.Duration) error {
	bodies := (n + batch - 1) / batch
	ids := make([][]string, bodies)
	lat := make([]time.Duration, bodies)
	cpu0, err := ld.cpu()
	if err != nil {
		return err
	}
	start := time.Now()
	err = parallel(ctx, bodies, c, func(ctx context.Context, k int) error {
		var body bytes.Buffer
		lo, hi := k*batch, min((k+1)*batch, n)
		for i := lo; i < hi; i++ {
			body.Write(leadJSON(i + 1))
			body.WriteByte('\n')
		}
		t0 := time.Now()
		status, b, err := ld.postBehind(ctx, body.Bytes())
		lat[k] = time.Since(t0)
		if err != nil {
			return err
		}
		var ans struct {
			Accepted int `json:"accepted"`
			Leads    []struct {
				ID string `json:"id"`
			} `json:"leads"`
		}
		if status != http.StatusAccepted || json.Unmarshal(b, &ans) != nil || ans.Accepted != hi-lo || len(ans.Leads) != hi-lo {
			return fmt.Errorf("body %d: %d %.300s", k, status, b)
		}
		for _, l := range ans.Leads {
			ids[k] = append(ids[k], l.ID)
		}
		return nil
	})
	accepted := time.Since(start)
	if err != nil {
		return err
	}
	for {
		var q struct {
			Depth    int `json:"depth"`
			Pending  int `json:"pending"`
			InFlight int `json:"in_flight"`
			Dead     int `json:"dead"`
		}
		if err := ld.get(ctx, "/v1/queue", &q); err != nil {
			return err
		}
		if q.Depth == 0 && q.Pending == 0 && q.InFlight == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the queue was not empty by the deadline (%d left)", q.Depth)
		case <-time.After(poll):
		}
	}
	completed := time.Since(start)
	cpu1, err := ld.cpu()
	if err != nil {
		return err
	}
	if !ld.verify {
		fmt.Printf("%.1f %.1f %.3f %.3f %.1f\n", float64(n)/accepted.Seconds(), float64(n)/completed.Seconds(),
			percentile(lat, 0.50), percentile(lat, 0.99), float64((cpu1-cpu0)/time.Microsecond)/float64(n))
		return nil
	}
	// every lead must be done, with success (not timed)
	all := slices.Concat(ids...)
	err = parallel(ctx, len(all), c, func(ctx context.Context, i int) error {
		var st struct {
			State  string `json:"state"`
			Result struct {
				Outcome string `json:"outcome"`
			} `json:"result"`
		}
		if err := ld.get(ctx, "/v1/leads/"+url.PathEscape(all[i]), &st); err != nil {
			return err
		}
		if st.State != "done" || st.Result.Outcome != "success" {
			return fmt.Errorf("lead %s: state %q, outcome %q", all[i], st.State, st.Result.Outcome)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("%.1f %.1f %.3f %.3f %.1f\n", float64(n)/accepted.Seconds(), float64(n)/completed.Seconds(),
		percentile(lat, 0.50), percentile(lat, 0.99), float64((cpu1-cpu0)/time.Microsecond)/float64(n))
	return nil
}

func main() {
	base := flag.String("url", "http://127.0.0.1:18090", "the service's loopback base URL")
	name := flag.String("integration", "bench-three-step", "integration name")
	mode := flag.String("mode", "run", "run (POST …/run) or queue (POST …/leads, then wait)")
	n := flag.Int("n", 1000, "leads")
	c := flag.Int("c", 1, "requests at once")
	batch := flag.Int("batch", 100, "leads per NDJSON body (queue mode)")
	poll := flag.Duration("poll", 20*time.Millisecond, "queue polling interval (queue mode)")
	limit := flag.Duration("deadline", 5*time.Minute, "give up after this long")
	pid := flag.Int("pid", 0, "the service's process id: print its CPU time per lead (0: print 0)")
	verify := flag.Bool("verify", true, "queue mode: read every lead back and check it is done with success")
	rss := flag.Duration("rss", 0, "with -pid: sample the service's RSS this often and print the samples and its peak on stderr")
	flag.Parse()

	u, err := url.Parse(*base)
	if err != nil || u.Scheme != "http" || net.ParseIP(u.Hostname()) == nil || !net.ParseIP(u.Hostname()).IsLoopback() {
		fmt.Fprintln(os.Stderr, "load: -url must be http://LOOPBACK-IP:PORT")
		os.Exit(2)
	}
	if *n < 1 || *n > 1_000_000 || *c < 1 || *c > 1024 || *batch < 1 {
		fmt.Fprintln(os.Stderr, "load: -n must be 1..1000000, -c 1..1024, -batch ≥ 1")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	ld := &loader{
		hc: &http.Client{
			Transport: &http.Transport{MaxIdleConns: *c * 2, MaxIdleConnsPerHost: *c * 2, IdleConnTimeout: 30 * time.Second},
			Timeout:   time.Minute,
		},
		base:   *base,
		name:   *name,
		pid:    *pid,
		verify: *verify,
	}
	if *pid != 0 && *rss > 0 {
		stop, done := make(chan struct{}), make(chan struct{})
		go ld.rss(*rss, stop, done)
		defer func() { close(stop); <-done }()
	}
	switch *mode {
	case "run":
		err = ld.runSync(ctx, *n, *c)
	case "queue":
		err = ld.runQueue(ctx, *n, *c, *batch, *poll)
	default:
		err = errors.New("-mode must be run or queue")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}
