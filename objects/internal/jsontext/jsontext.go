// Package jsontext holds the lexical pieces of JSON (RFC 8259) that the
// strict readers and writers of lwm2md's JSON content formats (SenML JSON,
// LwM2M JSON) share: strings with their escapes, control characters,
// UTF-8 and UTF-16 surrogates; numbers; and writing strings. The formats
// keep their own grammar on top. encoding/json is not used because it
// replaces invalid UTF-8 and lone surrogates silently, and an LwM2M
// server must refuse them (they would be stored as different text than
// the device sent).
package jsontext

import (
	"unicode/utf16"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
)

// Error is a lexical error at byte Off of the input. Kind is
// objects.ErrMalformed or objects.ErrUTF8.
type Error struct {
	Off  int
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func fail(off int, kind error, msg string) *Error { return &Error{Off: off, Kind: kind, Msg: msg} }

// String reads the JSON string whose opening quote is d[i]. It returns the
// value and the offset just after the closing quote.
func String(d []byte, i int) (string, int, *Error) {
	if i >= len(d) || d[i] != '"' {
		return "", i, fail(i, objects.ErrMalformed, "expected a string")
	}
	start := i + 1
	ascii := true
	for j := start; j < len(d); j++ {
		switch c := d[j]; {
		case c == '"':
			s := d[start:j]
			if !ascii && !utf8.Valid(s) {
				return "", i, fail(start+FirstInvalid(s), objects.ErrUTF8, "string is not valid UTF-8")
			}
			return string(s), j + 1, nil
		case c == '\\':
			return escaped(d, i)
		case c < 0x20:
			return "", i, fail(j, objects.ErrMalformed, "control character in a string")
		case c >= 0x80:
			ascii = false
		}
	}
	return "", i, fail(i, objects.ErrMalformed, "string does not end")
}

// escaped is String's slow path, for strings with escapes.
func escaped(d []byte, i int) (string, int, *Error) {
	b := make([]byte, 0, 32)
	j := i + 1
	for j < len(d) {
		c := d[j]
		switch {
		case c == '"':
			if !utf8.Valid(b) {
				return "", i, fail(i+1, objects.ErrUTF8, "string is not valid UTF-8")
			}
			return string(b), j + 1, nil
		case c < 0x20:
			return "", i, fail(j, objects.ErrMalformed, "control character in a string")
		case c != '\\':
			b = append(b, c)
			j++
			continue
		}
		if j+1 >= len(d) {
			break
		}
		esc := d[j+1]
		j += 2
		switch esc {
		case '"', '\\', '/':
			b = append(b, esc)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(d, j)
			if !ok {
				return "", i, fail(j-2, objects.ErrMalformed, `\u needs four hex digits`)
			}
			j += 4
			if utf16.IsSurrogate(r) {
				// A high surrogate must be followed by \u and a low one.
				r2, ok := rune(0), false
				if j+6 <= len(d) && d[j] == '\\' && d[j+1] == 'u' {
					r2, ok = hex4(d, j+2)
				}
				if r = utf16.DecodeRune(r, r2); !ok || r == utf8.RuneError {
					return "", i, fail(j-6, objects.ErrUTF8, "string has a lone UTF-16 surrogate")
				}
				j += 6
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", i, fail(j-2, objects.ErrMalformed, `unknown escape \`+string(esc))
		}
	}
	return "", i, fail(i, objects.ErrMalformed, "string does not end")
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// FirstInvalid returns the offset of the first byte of b that is not part
// of valid UTF-8 (0 when b is valid).
func FirstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return 0
}

// Number reads the JSON number that starts at d[i]. It returns the offset
// after it and whether it is an integer (no fraction, no exponent).
func Number(d []byte, i int) (int, bool, *Error) {
	start := i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		return start, false, fail(start, objects.ErrMalformed, "not a number")
	}
	isInt := true
	if i < len(d) && d[i] == '.' {
		isInt = false
		j := digits(d, i+1)
		if j == i+1 {
			return start, false, fail(j, objects.ErrMalformed, "digits expected after the decimal point")
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		isInt = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return start, false, fail(j, objects.ErrMalformed, "digits expected in the exponent")
		}
		i = j
	}
	return i, isInt, nil
}

func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// ValidNumber reports whether s is exactly one JSON number.
func ValidNumber(s string) bool {
	end, _, err := Number([]byte(s), 0)
	return err == nil && end == len(s)
}

const hexDigits = "0123456789abcdef"

// AppendString writes s, which must be valid UTF-8, as a JSON string,
// escaping only what JSON requires.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
