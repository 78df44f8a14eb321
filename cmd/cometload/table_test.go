package main

import (
	"strings"
	"testing"
)

func TestTableMedians(t *testing.T) {
	in := `not json
{"scenario":"fanout","transport":"websocket","label":"a","clients":10,"rate":5,"delivered_per_sec":100,"latency_ms":{"p50":1,"p90":2,"p99":3,"max":9},"lost":1,"errors":0,"tool_cpu_percent":10,"server_cpu_percent":50,"server_cpu_us_per_delivery":1.5}
{"scenario":"fanout","transport":"websocket","label":"a","clients":10,"rate":5,"delivered_per_sec":300,"latency_ms":{"p50":5,"p90":6,"p99":7,"max":9},"lost":0,"errors":2,"tool_cpu_percent":30,"server_cpu_percent":70,"server_cpu_us_per_delivery":1}
{"scenario":"fanout","transport":"websocket","label":"a","clients":10,"rate":5,"delivered_per_sec":200,"latency_ms":{"p50":3,"p90":4,"p99":5,"max":9},"lost":0,"errors":0,"tool_cpu_percent":20,"server_cpu_percent":60,"server_cpu_us_per_delivery":1.25}
{"scenario":"idle","transport":"websocket","clients":4,"bytes_per_session":1000,"rss_before":1,"rss_after":4001}
`
	reps, err := readReports(strings.NewReader(in))
	if err != nil || len(reps) != 4 {
		t.Fatalf("read %d reports: %v", len(reps), err)
	}
	rows := groupReports(reps)
	if len(rows) != 2 || rows[0].label != "a" || len(rows[0].runs) != 3 || rows[1].label != "idle websocket" {
		t.Fatalf("groups: %+v", rows)
	}
	if m := median(rows[0].runs, func(r *Report) float64 { return r.DeliveredPerSec }); m != 200 {
		t.Errorf("median delivered/s %v", m)
	}
	var out strings.Builder
	if err := writeTable(&out, reps); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"200", "3.00", "60", "1.25", "1000"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
