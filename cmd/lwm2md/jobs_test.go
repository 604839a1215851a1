package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBinaryJobsWithoutBroker runs the binary with NATS and MQTT off and
// checks that a job submitted over REST runs to its end. The device is a
// one-shot registration that answers nothing, so its part fails when
// the job's 2 s deadline passes.
func TestBinaryJobsWithoutBroker(t *testing.T) {
	p := startBinary(t, nil, "--data-dir", t.TempDir(), "--coap-addr", "127.0.0.1:0", "--log-format", "json")
	coap := listenAddr(t, p.expect("lwm2m server listening"))
	web := "http://" + listenAddr(t, p.expect("http listening"))
	registerOnce(t, coap)
	resp, err := http.Post(web+"/api/v1/jobs", "application/json",
		strings.NewReader(`{"op":"read","command":{"path":"/3/0/0"},"targets":{"endpoints":["cmd-test"]},"deadline":"2s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var job struct{ ID, Status string }
	err = json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || job.ID == "" {
		t.Fatalf("submit: %d %+v %v", resp.StatusCode, job, err)
	}
	var got struct {
		Status string
		Failed int
	}
	waitFor(t, 15*time.Second, "the job's end", func() bool {
		resp, err := http.Get(web + "/api/v1/jobs/" + job.ID)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return json.Unmarshal(b, &got) == nil && got.Status == "done"
	})
	if got.Failed != 1 {
		t.Fatalf("job %+v, want the silent device failed", got)
	}
	p.stop()
}
