package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
)

var commands map[string]func(ctx context.Context, c *apiClient, args []string) error

func init() {
	commands = map[string]func(ctx context.Context, c *apiClient, args []string) error{
		"clients":  cmdClients,
		"show":     cmdShow,
		"read":     cmdRead,
		"write":    cmdWrite,
		"exec":     cmdExec,
		"create":   cmdCreate,
		"delete":   cmdDelete,
		"discover": cmdDiscover,
		"observe":  cmdObserve,
		"cancel":   cmdCancel,
		"events":   cmdEvents,
	}
}

// flags parses a command's flags; positional arguments may come before
// or after them.
func flags(name string, args []string, want int, define func(fs *flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if define != nil {
		define(fs)
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError(err.Error())
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if want >= 0 && len(pos) != want {
		return nil, usageError(fmt.Sprintf("want %d arguments, got %d", want, len(pos)))
	}
	return pos, nil
}

// devicePath is the API path of a device's node: the endpoint escaped as
// one segment, the LwM2M path as given.
func devicePath(ep, path string) (string, error) {
	if ep == "" {
		return "", usageError("empty endpoint")
	}
	p := "/clients/" + url.PathEscape(ep)
	if path == "" || path == "/" {
		return p, nil
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return p + path, nil
}

type clientRow struct {
	Endpoint  string `json:"endpoint"`
	Status    string `json:"status"`
	Version   string `json:"version"`
	Binding   string `json:"binding"`
	Address   string `json:"address"`
	UpdatedAt string `json:"updatedAt"`
}

func cmdClients(ctx context.Context, c *apiClient, args []string) error {
	q := url.Values{}
	var prefix, status, version string
	if _, err := flags("clients", args, 0, func(fs *flag.FlagSet) {
		fs.StringVar(&prefix, "prefix", "", "endpoint prefix")
		fs.StringVar(&status, "status", "", "online or sleeping")
		fs.StringVar(&version, "version", "", "LwM2M version")
	}); err != nil {
		return err
	}
	for k, v := range map[string]string{"prefix": prefix, "status": status, "version": version} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", "1000")
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tSTATUS\tVERSION\tBINDING\tADDRESS\tUPDATED")
	n := 0
	for {
		b, _, err := c.do(ctx, "GET", "/clients", q, nil, "")
		if err != nil {
			return err
		}
		var page struct {
			Clients []clientRow `json:"clients"`
			Next    string      `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return fmt.Errorf("decoding the device list: %w", err)
		}
		for _, r := range page.Clients {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Endpoint, r.Status, r.Version, r.Binding, r.Address, r.UpdatedAt)
			n++
		}
		if page.Next == "" {
			break
		}
		q.Set("cursor", page.Next)
	}
	tw.Flush()
	fmt.Fprintf(c.errOut, "%d devices\n", n)
	return nil
}

func cmdShow(ctx context.Context, c *apiClient, args []string) error {
	pos, err := flags("show", args, 1, nil)
	if err != nil {
		return err
	}
	p, err := devicePath(pos[0], "")
	if err != nil {
		return err
	}
	b, _, err := c.do(ctx, "GET", p, nil, nil, "")
	if err != nil {
		return err
	}
	return printJSON(c.out, b)
}

func cmdRead(ctx context.Context, c *apiClient, args []string) error {
	var format string
	var raw bool
	pos, err := flags("read", args, 2, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "", "content format on the wire (tlv, senml-cbor, ...)")
		fs.BoolVar(&raw, "json", false, "print the JSON node as the API answers it")
	})
	if err != nil {
		return err
	}
	p, err := devicePath(pos[0], pos[1])
	if err != nil {
		return err
	}
	q := url.Values{}
	if format != "" {
		q.Set("format", format)
	}
	b, status, err := c.do(ctx, "GET", p, q, nil, "")
	if err != nil || status == 202 {
		return err
	}
	if raw {
		return printJSON(c.out, b)
	}
	return printNode(c.out, b)
}

func cmdWrite(ctx context.Context, c *apiClient, args []string) error {
	var partial bool
	pos, err := flags("write", args, 3, func(fs *flag.FlagSet) {
		fs.BoolVar(&partial, "partial", false, "partial update (PATCH) instead of replace")
	})
	if err != nil {
		return err
	}
	p, err := devicePath(pos[0], pos[1])
	if err != nil {
		return err
	}
	method := "PUT"
	if partial {
		method = "PATCH"
	}
	body, ct := []byte(pos[2]), "text/plain"
	if v := strings.TrimSpace(pos[2]); strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[") {
		ct = "application/json"
	}
	_, _, err = c.do(ctx, method, p, nil, body, ct)
	return err
}

func cmdExec(ctx context.Context, c *apiClient, args []string) error {
	pos, err := flags("exec", args, -1, nil)
	if err != nil {
		return err
	}
	if len(pos) < 2 || len(pos) > 3 {
		return usageError("want EP PATH [ARGS]")
	}
	p, err := devicePath(pos[0], pos[1])
	if err != nil {
		return err
	}
	var body []byte
	if len(pos) == 3 {
		body = []byte(pos[2])
	}
	_, _, err = c.do(ctx, "POST", p, nil, body, "text/plain")
	return err
}

func cmdCreate(ctx context.Context, c *apiClient, args []string) error {
	pos, err := flags("create", args, 3, nil)
	if err != nil {
		return err
	}
	p, err := devicePath(pos[0], pos[1])
	if err != nil {
		return err
	}
	b, _, err := c.do(ctx, "POST", p, nil, []byte(pos[2]), "application/json")
	if err == nil && len(b) > 0 {
		return printJSON(c.out, b)
	}
	return err
}

func cmdDelete(ctx context.Context, c *apiClient, args []string) error {
	return simple(ctx, c, "delete", "DELETE", "", args)
}

func cmdCancel(ctx context.Context, c *apiClient, args []string) error {
	return simple(ctx, c, "cancel", "DELETE", "/observe", args)
}

func simple(ctx context.Context, c *apiClient, name, method, suffix string, args []string) error {
	pos, err := flags(name, args, 2, nil)
	if err != nil {
		return err
	}
	p, err := devicePath(pos[0], pos[1])
	if err != nil {
		return err
	}
	_, _, err = c.do(ctx, method, p+suffix, nil, nil, "")
	return err
}

func cmdDiscover(ctx context.Context, c *apiClient, args []string) error {
	pos, err := flags("discover", args, 2, nil)
	if err != nil {
		return err
	}
	p, err := devicePath(pos[0], pos[1])
	if err != nil {
		return err
	}
	b, _, err := c.do(ctx, "GET", p+"/discover", nil, nil, "")
	if err != nil {
		return err
	}
	return printJSON(c.out, b)
}

// cmdObserve subscribes to the device's notifications first, so none is
// missed, then starts the observation and prints each notification.
func cmdObserve(ctx context.Context, c *apiClient, args []string) error {
	var count int
	pos, err := flags("observe", args, 2, func(fs *flag.FlagSet) {
		fs.IntVar(&count, "n", 0, "stop after this many notifications (0: until interrupted)")
	})
	if err != nil {
		return err
	}
	p, err := devicePath(pos[0], pos[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		seen := 0
		errc <- c.events(ctx, url.Values{"endpoint": {pos[0]}, "kind": {"notification"}}, func(kind string, data []byte) bool {
			if kind == "notification" || strings.Contains(string(data), `"kind":"notification"`) {
				select {
				case <-started:
				default:
					return true
				}
				var e struct {
					Node json.RawMessage `json:"node"`
				}
				if json.Unmarshal(data, &e) == nil && len(e.Node) > 0 {
					_ = printNode(c.out, e.Node)
					seen++
				}
			}
			return count == 0 || seen < count
		})
	}()
	b, _, err := c.do(ctx, "POST", p+"/observe", nil, nil, "")
	if err != nil {
		return err
	}
	close(started)
	if len(b) > 0 {
		_ = printNode(c.out, b) // the current value
	}
	return <-errc
}

func cmdEvents(ctx context.Context, c *apiClient, args []string) error {
	var ep, kind string
	if _, err := flags("events", args, 0, func(fs *flag.FlagSet) {
		fs.StringVar(&ep, "endpoint", "", "only this device (comma-separated list)")
		fs.StringVar(&kind, "kind", "", "only these kinds (registered, notification, ...)")
	}); err != nil {
		return err
	}
	q := url.Values{}
	if ep != "" {
		q.Set("endpoint", ep)
	}
	if kind != "" {
		q.Set("kind", kind)
	}
	return c.events(ctx, q, func(_ string, data []byte) bool {
		fmt.Fprintln(c.out, string(data))
		return true
	})
}

func printJSON(w io.Writer, b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		_, err = w.Write(b)
		return err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}

// printNode prints a nodejson node as one "path type value" row per
// value, in path order.
func printNode(w io.Writer, b []byte) error {
	var n map[string]any
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("decoding the node: %w", err)
	}
	var rows [][3]string
	flatten(n, "", &rows)
	sort.SliceStable(rows, func(i, j int) bool { return pathLess(rows[i][0], rows[j][0]) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r[0], r[1], r[2])
	}
	return tw.Flush()
}

func flatten(n map[string]any, typ string, rows *[][3]string) {
	if t, ok := n["type"].(string); ok {
		typ = t
	}
	path, _ := n["path"].(string)
	if v, ok := n["value"]; ok {
		*rows = append(*rows, [3]string{path, typ, valueText(v)})
	}
	for _, key := range []string{"instances", "resources"} {
		kids, _ := n[key].([]any)
		for _, k := range kids {
			if m, ok := k.(map[string]any); ok {
				flatten(m, typ, rows)
			}
		}
	}
}

func valueText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strings.TrimSuffix(fmt.Sprintf("%.15g", v), ".0")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// pathLess orders LwM2M paths numerically segment by segment.
func pathLess(a, b string) bool {
	as, bs := strings.Split(strings.Trim(a, "/"), "/"), strings.Split(strings.Trim(b, "/"), "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		if len(as[i]) != len(bs[i]) {
			return len(as[i]) < len(bs[i])
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}
