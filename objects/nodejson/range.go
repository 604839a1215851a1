package nodejson

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/lwm2md/lwm2md/objects"
)

// span is one item of a RangeEnumeration: lo..hi, or one number (lo == hi).
type span struct{ lo, hi float64 }

// parseRange reads the numeric RangeEnumeration forms the OMA registry and
// the built-in objects use: "0..255", "1..65534", "16, 32 or 48 bytes",
// "0..255 bytes", "6 bytes". ok is false for anything else (letter
// enumerations such as "U, UQ, S", widths such as "16-bit"): those are
// documentation for humans and are not enforced. bytes reports a unit of
// bytes, which only constrains lengths.
func parseRange(s string) (spans []span, bytes, ok bool) {
	s = strings.TrimSpace(s)
	for _, unit := range []string{" bytes", " byte"} {
		if strings.HasSuffix(s, unit) {
			s, bytes = strings.TrimSpace(strings.TrimSuffix(s, unit)), true
			break
		}
	}
	if s == "" {
		return nil, false, false
	}
	s = strings.ReplaceAll(s, " or ", ",")
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isSpan := strings.Cut(item, "..")
		a, err1 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
		b, err2 := a, error(nil)
		if isSpan {
			b, err2 = strconv.ParseFloat(strings.TrimSpace(hi), 64)
		}
		if err1 != nil || err2 != nil || b < a {
			return nil, false, false
		}
		spans = append(spans, span{a, b})
	}
	return spans, bytes, true
}

// checkRange checks v against def's RangeEnumeration (LwM2M Core Appendix
// D.1, "Range or Enumeration"): the value of a number, the byte length of
// a string or opaque value. Comparison is in float64, exact for the
// ranges the registry publishes.
func checkRange(def *objects.ResourceDef, v objects.Value) error {
	spans, bytes, ok := parseRange(def.Range)
	if !ok {
		return nil
	}
	var x float64
	what := "value"
	switch v.Type() {
	case objects.TypeString, objects.TypeCorelnk:
		x, what = float64(len(v.Str())), "length in bytes"
	case objects.TypeOpaque:
		x, what = float64(len(v.Bytes())), "length in bytes"
	case objects.TypeInteger, objects.TypeTime:
		x = float64(v.Int())
	case objects.TypeUnsigned:
		x = float64(v.Uint())
	case objects.TypeFloat:
		x = v.Float()
		if math.IsNaN(x) {
			return fmt.Errorf("NaN is outside %q: %w", def.Range, objects.ErrRange)
		}
	default:
		return nil
	}
	if bytes && what == "value" {
		return nil // "2 bytes" on an integer is its encoded width, not a range
	}
	for _, sp := range spans {
		if x >= sp.lo && x <= sp.hi {
			return nil
		}
	}
	return fmt.Errorf("%s %s is outside the range %q of resource %q: %w",
		what, strconv.FormatFloat(x, 'g', -1, 64), def.Range, def.Name, objects.ErrRange)
}
