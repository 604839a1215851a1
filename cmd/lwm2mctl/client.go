package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// apiClient talks to lwm2md's REST API.
type apiClient struct {
	base    string // .../api/v1
	token   string
	timeout time.Duration
	http    *http.Client
	out     io.Writer
	errOut  io.Writer
}

func parseGlobal(args []string, env func(string) string, stderr io.Writer) (*apiClient, []string, error) {
	fs := flag.NewFlagSet("lwm2mctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := env("LWM2MCTL_URL")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	base := fs.String("url", def, "lwm2md's HTTP address (env LWM2MCTL_URL)")
	token := fs.String("token", env("LWM2MCTL_TOKEN"), "API token (env LWM2MCTL_TOKEN)")
	timeout := fs.Duration("timeout", 0, "how long a device may take to answer (the server's default when 0)")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(*base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "lwm2mctl: --url %q: want http(s)://host:port\n", *base)
		return nil, nil, errors.New("bad url")
	}
	return &apiClient{
		base:    strings.TrimRight(*base, "/") + "/api/v1",
		token:   *token,
		timeout: *timeout,
		http:    &http.Client{},
	}, fs.Args(), nil
}

// problem is an RFC 9457 answer of the API.
type problem struct {
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Field    string `json:"field"`
	State    string `json:"state"`
	CoAPCode string `json:"coapCode"`
}

func (p *problem) Error() string {
	s := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	if p.CoAPCode != "" {
		s += " (device answered " + p.CoAPCode + ")"
	}
	return s
}

// do sends one request and returns the answer's body; an error status is
// returned as the API's problem.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body []byte, contentType string) ([]byte, int, error) {
	if c.timeout > 0 {
		if query == nil {
			query = url.Values{}
		}
		query.Set("timeout", c.timeout.String())
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		p := &problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		_ = json.Unmarshal(b, p)
		return nil, resp.StatusCode, p
	}
	if resp.StatusCode == http.StatusAccepted {
		fmt.Fprintf(c.errOut, "queued: the device is sleeping; poll %s\n", resp.Header.Get("Location"))
	}
	return b, resp.StatusCode, nil
}

// events follows the Server-Sent Events stream and calls fn with each
// event's data until ctx ends or fn returns false.
func (c *apiClient) events(ctx context.Context, query url.Values, fn func(kind string, data []byte) bool) error {
	u := c.base + "/events"
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p := &problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, p)
		return p
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var kind string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			kind = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			if !fn(kind, []byte(strings.TrimSpace(line[len("data:"):]))) {
				return nil
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}
