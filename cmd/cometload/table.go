package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// row is a group of runs with the same label, summarised by medians.
type row struct {
	label string
	runs  []Report
}

// readReports reads JSON result lines; other lines are skipped.
func readReports(r io.Reader) ([]Report, error) {
	var out []Report
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rep Report
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			return nil, fmt.Errorf("bad result line: %w", err)
		}
		out = append(out, rep)
	}
	return out, sc.Err()
}

// groupReports groups reports by label (or scenario and transport when
// unlabelled), in order of first appearance.
func groupReports(reps []Report) []row {
	var rows []row
	index := map[string]int{}
	for _, rep := range reps {
		key := rep.Label
		if key == "" {
			key = rep.Scenario + " " + rep.Transport
		}
		i, ok := index[key]
		if !ok {
			i = len(rows)
			index[key] = i
			rows = append(rows, row{label: key})
		}
		rows[i].runs = append(rows[i].runs, rep)
	}
	return rows
}

// median returns the median of f over the runs (the mean of the middle
// two for an even count).
func median(runs []Report, f func(*Report) float64) float64 {
	if len(runs) == 0 {
		return 0
	}
	v := make([]float64, len(runs))
	for i := range runs {
		v[i] = f(&runs[i])
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// writeTable prints one line per group: medians of the runs, with lost
// and errors summed over them.
func writeTable(w io.Writer, reps []Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\truns\tsessions\trate\tdelivered/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tlost\terrors\ttool CPU%\tserver CPU%\tserver µs/delivery\tB/session\t")
	for _, r := range groupReports(reps) {
		var lost, errs int64
		serverCPU, perDelivery, bps, rate := "-", "-", "-", "-"
		if r.runs[0].Rate > 0 {
			rate = fmt.Sprintf("%g", r.runs[0].Rate)
		}
		for _, rep := range r.runs {
			lost += rep.Lost
			errs += rep.Errors
		}
		if r.runs[0].ServerCPUPercent != nil {
			serverCPU = fmt.Sprintf("%.0f", median(r.runs, func(x *Report) float64 {
				if x.ServerCPUPercent == nil {
					return 0
				}
				return *x.ServerCPUPercent
			}))
		}
		if r.runs[0].ServerCPUMicrosPerDelivery != nil {
			perDelivery = fmt.Sprintf("%.2f", median(r.runs, func(x *Report) float64 {
				if x.ServerCPUMicrosPerDelivery == nil {
					return 0
				}
				return *x.ServerCPUMicrosPerDelivery
			}))
		}
		if r.runs[0].BytesPerSession != nil {
			bps = fmt.Sprintf("%.0f", median(r.runs, func(x *Report) float64 {
				if x.BytesPerSession == nil {
					return 0
				}
				return *x.BytesPerSession
			}))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%.0f\t%s\t%s\t%s\t\n",
			r.label, len(r.runs),
			median(r.runs, func(x *Report) float64 { return float64(x.Clients) }),
			rate,
			median(r.runs, func(x *Report) float64 { return x.DeliveredPerSec }),
			median(r.runs, func(x *Report) float64 { return x.Latency.P50 }),
			median(r.runs, func(x *Report) float64 { return x.Latency.P90 }),
			median(r.runs, func(x *Report) float64 { return x.Latency.P99 }),
			median(r.runs, func(x *Report) float64 { return x.Latency.Max }),
			lost, errs,
			median(r.runs, func(x *Report) float64 { return x.ToolCPUPercent }),
			serverCPU, perDelivery, bps)
	}
	return tw.Flush()
}

// writeSlowTable prints one line per group of slow runs: medians of the
// healthy subscribers' latency and longest gap, drops and losses summed,
// and for the first paused subscriber the median time the gateway took
// to disconnect it (over the runs where it did: their count follows) and
// how its socket ended most often.
func writeSlowTable(w io.Writer, reps []Report) error {
	var slow []Report
	for _, r := range reps {
		if r.Slow != nil {
			slow = append(slow, r)
		}
	}
	if len(slow) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "slow run\truns\thealthy\tpaused\tp50 ms\tp99 ms\tmax ms\tmax gap ms\tdropped\tlost\tpaused closed s\tafter stall s\tpaused end\t")
	for _, r := range groupReports(slow) {
		var dropped, lost int64
		for _, rep := range r.runs {
			dropped += int64(rep.Slow.HealthyDropped)
			lost += rep.Lost
		}
		closed, afterStall := "-", "-"
		var cs, as []Report
		ends := map[string]int64{}
		for _, rep := range r.runs {
			if len(rep.Slow.PausedClients) == 0 {
				continue
			}
			p := rep.Slow.PausedClients[0]
			ends[p.End]++
			if p.ClosedS != nil {
				cs = append(cs, rep)
			}
			if p.ClosedAfterStallS != nil {
				as = append(as, rep)
			}
		}
		paused := r.runs[0].Slow.Paused > 0
		if paused {
			closed = fmt.Sprintf("never (0/%d)", len(r.runs))
		}
		if len(cs) > 0 {
			closed = fmt.Sprintf("%.1f (%d/%d)", median(cs, func(x *Report) float64 { return *x.Slow.PausedClients[0].ClosedS }), len(cs), len(r.runs))
		}
		if len(as) > 0 {
			afterStall = fmt.Sprintf("%.1f", median(as, func(x *Report) float64 { return *x.Slow.PausedClients[0].ClosedAfterStallS }))
		}
		end := "-"
		if k := sortedKinds(ends); len(k) > 0 {
			end = k[0]
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.0f\t%d\t%d\t%s\t%s\t%s\t\n",
			r.label, len(r.runs),
			median(r.runs, func(x *Report) float64 { return float64(x.Slow.Healthy) }),
			r.runs[0].Slow.Paused,
			median(r.runs, func(x *Report) float64 { return x.Latency.P50 }),
			median(r.runs, func(x *Report) float64 { return x.Latency.P99 }),
			median(r.runs, func(x *Report) float64 { return x.Latency.Max }),
			median(r.runs, func(x *Report) float64 { return x.Slow.MaxGapMS }),
			dropped, lost, closed, afterStall, end)
	}
	return tw.Flush()
}

// printTable prints the table of the result files named.
func printTable(paths []string) error {
	var all []Report
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		reps, err := readReports(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, reps...)
	}
	if err := writeTable(os.Stdout, all); err != nil {
		return err
	}
	return writeSlowTable(os.Stdout, all)
}
