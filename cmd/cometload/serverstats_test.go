package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

const statsBefore = `{"sessions":"3","longPollAnswer":{"count":"100","p50Ms":400,"p90Ms":600,"p99Ms":700,"maxMs":700,"buckets":[
{"upperMs":10,"count":"0"},{"upperMs":50,"count":"0"},{"upperMs":100,"count":"0"},{"upperMs":1000,"count":"100"}]}}`

const statsAfter = `{"sessions":"3","longPollAnswer":{"count":"1100","p50Ms":80,"p90Ms":120,"p99Ms":650,"maxMs":700,"buckets":[
{"upperMs":10,"count":"200"},{"upperMs":50,"count":"700"},{"upperMs":100,"count":"1000"},{"upperMs":1000,"count":"1100"}]}}`

func TestFetchServerLatencyAndWindow(t *testing.T) {
	body := statsBefore
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/stats" || r.Header.Get("Authorization") != "Bearer tk" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	ctx := context.Background()
	before, err := fetchServerLatency(ctx, srv.URL+"/", "tk")
	if err != nil {
		t.Fatal(err)
	}
	body = statsAfter
	after, err := fetchServerLatency(ctx, srv.URL, "tk")
	if err != nil {
		t.Fatal(err)
	}
	// The window holds 1,000 answers: 200 under 10 ms, 500 more under
	// 50 ms, 300 more under 100 ms.
	got := answersBetween(before, after)
	want := ServerAnswers{Count: 1000, P50: 50, P90: 100, P99: 100, Within50msPct: 70, SinceStartMaxMs: 700}
	if *got != want {
		t.Errorf("window = %+v; want %+v", *got, want)
	}
	// Without a first snapshot: everything since the start, where the
	// slowest 1% lies past the last bucket but one.
	all := answersBetween(nil, after)
	if all.Count != 1100 || all.P50 != 50 || all.P99 != 1000 || all.Within50msPct != 63.6 {
		t.Errorf("since start = %+v", *all)
	}
	if _, err := fetchServerLatency(ctx, srv.URL, "wrong"); err == nil {
		t.Error("a refused request gave no error")
	}
}

func TestAnswersBetweenBeyondBuckets(t *testing.T) {
	var after serverLatency
	if err := json.Unmarshal([]byte(`{"count":"10","maxMs":3000,"buckets":[{"upperMs":1000,"count":"5"}]}`), &after); err != nil {
		t.Fatal(err)
	}
	got := answersBetween(nil, &after)
	if got.P50 != 1000 || got.P90 != -1 {
		t.Errorf("answers = %+v; want p50 1000 and p90 beyond the buckets", *got)
	}
}
