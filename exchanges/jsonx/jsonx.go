// Package jsonx is a small, allocation-free JSON reader for the hot path of
// the liquidation decoders. It walks objects key by key with exact,
// case-sensitive key matching (encoding/json matches keys case-insensitively,
// which silently confuses Binance's "s"/"S" and "e"/"E" pairs), and parses
// numbers that venues send either bare or quoted.
//
// It validates the structure it walks (balanced brackets, terminated strings,
// well-formed literals) but does not unescape strings: String reports escaped
// strings as not OK, which the decoders treat as a malformed event since no
// venue symbol or side contains an escape.
package jsonx

import (
	"errors"
	"math"
	"strconv"
	"unsafe"
)

// Errors.
var (
	ErrSyntax   = errors.New("jsonx: invalid JSON")
	ErrNotObj   = errors.New("jsonx: not a JSON object")
	ErrNotNum   = errors.New("jsonx: not a number")
	ErrNotFinit = errors.New("jsonx: number is not finite")
	ErrTooDeep  = errors.New("jsonx: nesting too deep")
	ErrStopped  = errors.New("jsonx: stopped by the caller")
)

// MaxDepth bounds nesting so hostile frames cannot exhaust the stack.
const MaxDepth = 64

// Kind is the type of a JSON value, from its first byte.
type Kind uint8

// Kinds.
const (
	KindInvalid Kind = iota
	KindObject
	KindArray
	KindString
	KindNumber
	KindBool
	KindNull
)

// KindOf returns the kind of the raw value v.
func KindOf(v []byte) Kind {
	if len(v) == 0 {
		return KindInvalid
	}
	switch v[0] {
	case '{':
		return KindObject
	case '[':
		return KindArray
	case '"':
		return KindString
	case 't', 'f':
		return KindBool
	case 'n':
		return KindNull
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return KindNumber
	}
	return KindInvalid
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// TrimSpace returns b without leading and trailing JSON whitespace.
func TrimSpace(b []byte) []byte {
	i := skipWS(b, 0)
	j := len(b)
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
		j--
	}
	return b[i:j]
}

// ObjectEach calls fn for every member of the JSON object obj, in order, with
// the raw key (without quotes, escapes not processed) and the raw value.
// It stops early when fn returns false. The whole object is validated only up
// to the point where iteration stops.
func ObjectEach(obj []byte, fn func(key, value []byte) bool) error {
	stopped := false
	var skipErr error
	end, err := Members(obj, func(key, rest []byte) int {
		n, err := skipValue(rest, 0, 0)
		if err != nil {
			skipErr = err
			return -1
		}
		if !fn(key, rest[:n]) {
			stopped = true
			return -1
		}
		return n
	})
	switch {
	case skipErr != nil:
		return skipErr
	case stopped:
		return nil
	case err != nil:
		return err
	}
	if skipWS(obj, end) != len(obj) {
		return ErrSyntax
	}
	return nil
}

// Members walks the JSON object that starts b (after optional whitespace)
// without requiring b to end with it, so a caller can parse a nested value in
// place instead of skipping it first and walking it again. For every member
// fn gets the raw key and the input from the first byte of the value; it
// returns the length of the value it parsed, 0 to have Members skip the
// value, or a negative number to stop (Members then returns ErrStopped). On
// success Members returns the index just past the closing brace.
func Members(b []byte, fn func(key, rest []byte) int) (end int, err error) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, ErrNotObj
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, ErrSyntax
		}
		kend, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i+1 : kend-1]
		i = skipWS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return 0, ErrSyntax
		}
		i = skipWS(b, i+1)
		n := fn(key, b[i:])
		switch {
		case n < 0:
			return 0, ErrStopped
		case n == 0:
			vend, err := skipValue(b, i, 0)
			if err != nil {
				return 0, err
			}
			i = vend
		default:
			i += n
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, ErrSyntax
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, ErrSyntax
		}
	}
}

// Elements walks the JSON array at the start of b (after optional
// whitespace) in place, as Members walks an object: fn gets the input from
// the first byte of each element and returns the element's length, or 0
// to stop. Elements returns the index just past the closing bracket, or 0
// when the array is malformed or fn stopped.
func Elements(b []byte, fn func(rest []byte) int) int {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return 0
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for {
		if i >= len(b) {
			return 0
		}
		n := fn(b[i:])
		if n <= 0 {
			return 0
		}
		i = skipWS(b, i+n)
		if i >= len(b) {
			return 0
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1
		default:
			return 0
		}
	}
}

// Scalar returns the length of the string, number or literal at the start
// of rest, or -1 when rest starts with an object, an array or invalid
// JSON (a Members or Elements callback returns it to take a scalar and
// decline anything nested).
func Scalar(rest []byte) int {
	if len(rest) == 0 || rest[0] == '{' || rest[0] == '[' {
		return -1
	}
	n, err := Skip(rest)
	if err != nil {
		return -1
	}
	return n
}

// ScalarMembers walks the JSON object at the start of b, as Members does,
// when every member is a string, number or literal: set gets each key with
// its raw value. A nested value stops it (ErrStopped): a one-pass decoder
// declines such objects and leaves them to a decoder that bounds their
// depth from further up.
func ScalarMembers(b []byte, set func(key, value []byte)) (end int, err error) {
	return Members(b, func(key, rest []byte) int {
		n := Scalar(rest)
		if n > 0 {
			set(key, rest[:n])
		}
		return n
	})
}

// Skip returns the length of the JSON value at the start of b.
func Skip(b []byte) (int, error) { return skipValue(b, 0, 0) }

// ArrayEach calls fn for every element of the JSON array arr.
func ArrayEach(arr []byte, fn func(value []byte) bool) error {
	i := skipWS(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return ErrSyntax
	}
	i = skipWS(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		if skipWS(arr, i+1) != len(arr) {
			return ErrSyntax
		}
		return nil
	}
	for {
		vend, err := skipValue(arr, i, 0)
		if err != nil {
			return err
		}
		if !fn(arr[i:vend]) {
			return nil
		}
		i = skipWS(arr, vend)
		if i >= len(arr) {
			return ErrSyntax
		}
		switch arr[i] {
		case ',':
			i = skipWS(arr, i+1)
		case ']':
			if skipWS(arr, i+1) != len(arr) {
				return ErrSyntax
			}
			return nil
		default:
			return ErrSyntax
		}
	}
}

// Valid reports whether b is exactly one well-formed JSON value.
func Valid(b []byte) bool {
	i := skipWS(b, 0)
	end, err := skipValue(b, i, 0)
	return err == nil && skipWS(b, end) == len(b)
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\':
			j++
		case c == '"':
			return j + 1, nil
		case c < 0x20:
			return 0, ErrSyntax
		}
	}
	return 0, ErrSyntax
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return 0, ErrTooDeep
	}
	if i >= len(b) {
		return 0, ErrSyntax
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		closer := byte('}')
		if b[i] == '[' {
			closer = ']'
		}
		isObj := b[i] == '{'
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			if isObj {
				if i >= len(b) || b[i] != '"' {
					return 0, ErrSyntax
				}
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = skipWS(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, ErrSyntax
				}
				i = skipWS(b, i+1)
			}
			end, err := skipValue(b, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipWS(b, end)
			if i >= len(b) {
				return 0, ErrSyntax
			}
			if b[i] == closer {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, ErrSyntax
			}
			i = skipWS(b, i+1)
		}
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		j := i
		for j < len(b) {
			c := b[j]
			if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
				j++
				continue
			}
			break
		}
		if j == i {
			return 0, ErrSyntax
		}
		return j, nil
	}
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, ErrSyntax
	}
	return i + len(lit), nil
}

// String returns the contents of a JSON string value without its quotes. It
// reports false for non-strings and for strings containing escapes.
func String(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	s := v[1 : len(v)-1]
	for _, c := range s {
		if c == '\\' {
			return nil, false
		}
	}
	return s, true
}

// Unquote returns v without its surrounding quotes if it is a JSON string,
// else v as it is (a code sent as 7 or "7"); escapes are left as they are.
// For log lines and error codes, not for values that are counted.
func Unquote(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// Float parses a JSON number, bare or quoted ("0.014"), rejecting NaN,
// infinities and anything that is not a plain decimal number.
func Float(v []byte) (float64, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if len(v) == 0 {
		return 0, ErrNotNum
	}
	// strconv accepts "NaN", "Inf", hex floats and underscores; JSON does not.
	for _, c := range v {
		if !((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			return 0, ErrNotNum
		}
	}
	f, err := strconv.ParseFloat(unsafe.String(&v[0], len(v)), 64)
	if err != nil {
		return 0, ErrNotNum
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, ErrNotFinit
	}
	return f, nil
}

// Int parses a JSON integer, bare or quoted.
func Int(v []byte) (int64, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if len(v) == 0 {
		return 0, ErrNotNum
	}
	n, err := strconv.ParseInt(unsafe.String(&v[0], len(v)), 10, 64)
	if err != nil {
		return 0, ErrNotNum
	}
	return n, nil
}
