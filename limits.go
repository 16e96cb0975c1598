package meowmx

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxNameLength is the most bytes in an aggregate id, an aggregate type,
// an event type or a subscription name. It is checked before anything
// reaches the database, the same on every driver, so that code tested on
// SQLite is refused there exactly where PostgreSQL would refuse it (a
// PostgreSQL index entry holds at most about 2.7 kB, less when it does not
// compress). A longer name gets a *NameTooLongError, which matches
// ErrNameTooLong and ErrInvalidArgument; nothing is written.
const MaxNameLength = 1024

// ErrNameTooLong matches every *NameTooLongError.
var ErrNameTooLong = errors.New("meowmx: name longer than MaxNameLength")

// NameTooLongError reports an aggregate id, aggregate type, event type or
// subscription name longer than MaxNameLength bytes. Its message shows
// only the first bytes of the name.
type NameTooLongError struct {
	// Arg names the argument: "aggregate id", "events[2].type".
	Arg string
	// Length is the name's length in bytes; Max is MaxNameLength.
	Length, Max int
	// Prefix is the name's first bytes (at most 32), cut at a rune.
	Prefix string
}

// Error implements the error interface.
func (e *NameTooLongError) Error() string {
	return fmt.Sprintf("meowmx: invalid %s: %d bytes, longer than the limit of %d: %s…", e.Arg, e.Length, e.Max, strconv.Quote(e.Prefix))
}

// Is makes errors.Is(err, ErrNameTooLong) and errors.Is(err,
// ErrInvalidArgument) true.
func (e *NameTooLongError) Is(target error) bool {
	return target == ErrNameTooLong || target == ErrInvalidArgument
}

// nameTooLong returns a *NameTooLongError when s is longer than
// MaxNameLength, else nil. Call it after nameProblem: s is valid UTF-8.
func nameTooLong(arg, s string) error {
	if len(s) <= MaxNameLength {
		return nil
	}
	return &NameTooLongError{Arg: arg, Length: len(s), Max: MaxNameLength, Prefix: prefix(s, 32)}
}

// prefix returns the first bytes of s, at most n, cut at a rune.
func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// quoteShort quotes s for an error message, cut to its first 32 bytes:
// user input is never repeated whole.
func quoteShort(s string) string {
	if p := prefix(s, 32); p != s {
		return strconv.Quote(p) + "…"
	}
	return strconv.Quote(s)
}
