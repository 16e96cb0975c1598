package meowmxnats

import (
	"fmt"
	"strings"

	"github.com/meowmx/meowmx"
)

// EncodeToken encodes an aggregate type or id as one NATS subject token.
// The bytes A–Z, a–z, 0–9, '-' and '_' stand for themselves; every other
// byte — '.', '*', '>', '%', spaces, and each byte of a multi-byte UTF-8
// character — is written as '%' followed by two upper-case hexadecimal
// digits (percent-encoding, RFC 3986). So "order-1" stays "order-1",
// "eu.west/7" becomes "eu%2Ewest%2F7" and "chat noir" "chat%20noir". The
// encoding is reversible (DecodeToken), and any language's URL
// percent-decoder reads it back (Python's urllib.parse.unquote,
// JavaScript's decodeURIComponent).
func EncodeToken(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// plain tells whether a byte stands for itself in a subject token.
func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// DecodeToken reverses EncodeToken. It returns an error matching
// ErrBadSubject for a token EncodeToken cannot have written: an empty
// one, a byte that should have been encoded, a '%' not followed by two
// upper-case hexadecimal digits, or an encoded byte that needed none.
func DecodeToken(token string) (string, error) {
	if token == "" {
		return "", fmt.Errorf("%w: empty token", ErrBadSubject)
	}
	if !strings.Contains(token, "%") {
		for i := 0; i < len(token); i++ {
			if !plain(token[i]) {
				return "", fmt.Errorf("%w: %q: byte %q must be encoded", ErrBadSubject, token, token[i])
			}
		}
		return token, nil
	}
	b := make([]byte, 0, len(token))
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '%':
			if i+2 >= len(token) {
				return "", fmt.Errorf("%w: %q: truncated escape", ErrBadSubject, token)
			}
			hi, ok1 := unhex(token[i+1])
			lo, ok2 := unhex(token[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%w: %q: bad escape %q", ErrBadSubject, token, token[i:i+3])
			}
			d := hi<<4 | lo
			if plain(d) {
				return "", fmt.Errorf("%w: %q: %q needs no escape", ErrBadSubject, token, token[i:i+3])
			}
			b = append(b, d)
			i += 2
		case plain(c):
			b = append(b, c)
		default:
			return "", fmt.Errorf("%w: %q: byte %q must be encoded", ErrBadSubject, token, c)
		}
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Subject returns the subject the relay publishes an event of this stream
// to: prefix, then the encoded aggregate type, then the encoded aggregate
// id, separated by dots ("meowmx.order.order-1").
func Subject(prefix string, stream meowmx.StreamID) string {
	return prefix + "." + EncodeToken(stream.Type) + "." + EncodeToken(stream.ID)
}

// ParseSubject reverses Subject: it returns the stream of a subject that
// the relay published to with this prefix, or an error matching
// ErrBadSubject.
func ParseSubject(prefix, subject string) (meowmx.StreamID, error) {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return meowmx.StreamID{}, fmt.Errorf("%w: %q does not start with %q", ErrBadSubject, subject, prefix+".")
	}
	typ, id, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(id, ".") {
		return meowmx.StreamID{}, fmt.Errorf("%w: %q is not %s.<type>.<id>", ErrBadSubject, subject, prefix)
	}
	t, err := DecodeToken(typ)
	if err != nil {
		return meowmx.StreamID{}, err
	}
	i, err := DecodeToken(id)
	if err != nil {
		return meowmx.StreamID{}, err
	}
	return meowmx.StreamID{Type: t, ID: i}, nil
}

// checkPrefix tells what is wrong with a subject prefix, or "".
func checkPrefix(p string) string {
	if p == "" {
		return "empty"
	}
	for _, tok := range strings.Split(p, ".") {
		switch {
		case tok == "":
			return fmt.Sprintf("%q has an empty token", p)
		case tok == "*" || tok == ">":
			return fmt.Sprintf("%q has a wildcard", p)
		case strings.ContainsAny(tok, " \t\r\n*>"):
			return fmt.Sprintf("%q has a space or wildcard character", p)
		}
	}
	return ""
}

// covers tells whether the stream subject filter pattern matches every
// subject that filter (which may hold wildcards) matches.
func covers(pattern, filter string) bool {
	p, f := strings.Split(pattern, "."), strings.Split(filter, ".")
	for i, pt := range p {
		if pt == ">" {
			return len(f) > i
		}
		if i >= len(f) {
			return false
		}
		switch ft := f[i]; {
		case ft == ">":
			return false
		case pt == "*":
		case pt != ft:
			return false
		}
	}
	return len(p) == len(f)
}
