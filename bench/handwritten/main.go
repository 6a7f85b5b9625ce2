// Command handwritten is the baseline of bench/compare.sh: the three-step
// flow of bench/integration.yaml written by hand with net/http,
// encoding/json, xmlquery and regexp, the way a careful Go programmer would
// write it for this one partner:
//
//   - one pooled http.Client (keep-alive, as many idle connections per host
//     as workers), with a per-request timeout;
//   - leads decoded into a struct, answers decoded from the response body as
//     a stream (json.Decoder, xmlquery.Parse on the body);
//   - the XPath expressions and regexes compiled once;
//   - C workers, results written in input order as NDJSON, with the same
//     fields plumb run --output ndjson writes (index, line, outcome,
//     duration_ms, steps with their captures, the lead with its appended
//     fields).
//
// With -discard it writes nothing: each worker counts its leads' outcomes
// and no result is encoded, the program a user writes who only needs the
// calls made (the baseline of the outside measurement quoted in
// BENCHMARKS.md). The summary line on stderr is the same.
//
// Usage: handwritten -base URL -leads FILE -concurrency C [-discard] > results.ndjson
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/plumbhq/plumb/bench/handflow"
)

type job struct {
	index, line int
	lead        *handflow.Lead
	err         error
	out         chan []byte
}

func main() {
	base := flag.String("base", "http://127.0.0.1:18080", "sandbox base URL")
	leadsFile := flag.String("leads", "", "NDJSON leads file")
	conc := flag.Int("concurrency", 1, "leads at once")
	discard := flag.Bool("discard", false, "write no results, only count them")
	flag.Parse()
	f, err := os.Open(*leadsFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer f.Close()
	c := handflow.NewClient(*base, *conc)
	start := time.Now()

	jobs := make(chan *job)
	order := make(chan *job, 2**conc) // results are written in input order
	for range *conc {
		go func() {
			for j := range jobs {
				var res handflow.Result
				if j.err != nil {
					res = handflow.Result{Outcome: "error", Reason: j.err.Error(), Steps: []handflow.StepResult{}}
				} else {
					res = c.Run(j.lead)
				}
				if *discard {
					j.out <- outcomeOnly(res.Outcome)
					continue
				}
				res.Index, res.Line = j.index, j.line
				b, err := json.Marshal(&res)
				if err != nil {
					b = []byte(`{"outcome":"error"}`)
				}
				j.out <- b
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		r := bufio.NewReaderSize(f, 64<<10)
		line, index := 0, 0
		for {
			b, err := r.ReadBytes('\n')
			if len(bytes.TrimSpace(b)) > 0 {
				line++
				index++
				j := &job{index: index, line: line, lead: new(handflow.Lead), out: make(chan []byte, 1)}
				if derr := json.Unmarshal(b, j.lead); derr != nil {
					j.err = fmt.Errorf("line %d: %v", line, derr)
				}
				order <- j
				jobs <- j
			} else if len(b) > 0 {
				line++
			}
			if err != nil {
				return
			}
		}
	}()
	w := bufio.NewWriterSize(os.Stdout, 32<<10)
	n, ok := 0, 0
	for j := range order {
		b := <-j.out
		n++
		if *discard {
			if b[0] == 's' {
				ok++
			}
			continue
		}
		w.Write(b)
		w.WriteByte('\n')
		if bytes.Contains(b[:min(len(b), 64)], []byte(`"outcome":"success"`)) {
			ok++
		}
	}
	w.Flush()
	fmt.Fprintf(os.Stderr, "summary: %d leads in %s: %d success, %d other\n", n, time.Since(start).Round(time.Millisecond), ok, n-ok)
}

// outcomeOnly is what a -discard worker hands the writer: "s" for a
// success, "o" for any other outcome (constant slices, nothing allocated).
func outcomeOnly(outcome string) []byte {
	if outcome == "success" {
		return []byte("s")
	}
	return []byte("o")
}
