package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/lwm2md/lwm2md/api"
)

// readTokens reads api-token-file: one "<role> <token>" per line, blank
// lines and lines starting with # ignored. Errors name the line, never the
// token.
func readTokens(name string, log *slog.Logger) (map[string]api.Role, error) {
	if name == "" {
		return nil, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("api-token-file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("api-token-file can be read by other users: chmod 600 it", "file", name, "mode", st.Mode().Perm().String())
	}
	tokens := map[string]api.Role{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("api-token-file %s:%d: want '<role> <token>'", name, line)
		}
		role, err := api.ParseRole(fields[0])
		if err != nil {
			return nil, fmt.Errorf("api-token-file %s:%d: %w", name, line, err)
		}
		if len(fields[1]) < 16 {
			return nil, fmt.Errorf("api-token-file %s:%d: the token is shorter than 16 characters", name, line)
		}
		if _, dup := tokens[fields[1]]; dup {
			return nil, fmt.Errorf("api-token-file %s:%d: the token is given twice", name, line)
		}
		tokens[fields[1]] = role
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("api-token-file: %w", err)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("api-token-file %s holds no token", name)
	}
	return tokens, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
