package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/plumbhq/plumb/engine"
)

// TestMetricsAddrServesTheRunsCounts: --metrics-addr serves the engine's
// metrics in the Prometheus text format while runners count into them.
func TestMetricsAddrServesTheRunsCounts(t *testing.T) {
	var stderr bytes.Buffer
	s := &stdio{stdout: io.Discard, stderr: &stderr}
	m, stop, err := serveMetrics(s, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) }))
	defer partner.Close()
	p, err := engine.Parse("m.yaml", []byte("version: 1\nname: m\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/\" }\n"), engine.WithEvents(m))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(engine.Config{Values: map[string]any{"base_url": partner.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	for range 3 {
		r.Run(context.Background(), map[string]any{})
	}
	url := regexp.MustCompile(`http://\S+/metrics`).FindString(stderr.String())
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %q: %v", url, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f := fams["plumb_leads_total"]
	if f == nil || len(f.Metric) != 1 || f.Metric[0].GetCounter().GetValue() != 3 {
		t.Fatalf("plumb_leads_total: %v", f)
	}
	if !strings.Contains(f.Metric[0].String(), `value:"success"`) {
		t.Fatalf("labels: %v", f.Metric[0])
	}
}
