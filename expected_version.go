package meowmx

import (
	"strconv"

	"github.com/meowmx/meowmx/meowmxtype"
)

// ExpectedVersion is what an append expects of its stream: a version
// (0 or more), or one of AnyVersion, NoStream and StreamExists.
type ExpectedVersion = meowmxtype.ExpectedVersion

const (
	// AnyVersion appends whatever the stream's version; it creates the
	// stream when it does not exist.
	AnyVersion = meowmxtype.AnyVersion
	// NoStream appends only to a stream that has no events yet.
	NoStream = meowmxtype.NoStream
	// StreamExists appends only to a stream that has at least one event.
	StreamExists = meowmxtype.StreamExists
)

// Exact expects the stream to be at version v: its last event has version
// v. Exact(-1) is NoStream; below -1 is invalid and refused by Append.
func Exact(v int64) ExpectedVersion { return meowmxtype.Exact(v) }

// ParseExpectedVersion reads the forms ExpectedVersion.String writes:
// "any", "no-stream", "exists" or a version of 0 or more.
func ParseExpectedVersion(s string) (ExpectedVersion, error) {
	switch s {
	case "any":
		return AnyVersion, nil
	case "no-stream":
		return NoStream, nil
	case "exists":
		return StreamExists, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < -1 {
		return 0, &ArgumentError{Arg: "expected version", Reason: quoteShort(s) + " is not any, no-stream, exists or a version >= -1"}
	}
	return ExpectedVersion(v), nil
}
