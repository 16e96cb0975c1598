package meowmx

import (
	"strconv"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// ExpectedVersion is what an append expects of its stream: a version
// (0 or more), or one of AnyVersion, NoStream and StreamExists.
type ExpectedVersion int64

const (
	// AnyVersion appends whatever the stream's version; it creates the
	// stream when it does not exist.
	AnyVersion ExpectedVersion = ExpectedVersion(meowmxdriver.ExpectedAny)
	// NoStream appends only to a stream that has no events yet.
	NoStream ExpectedVersion = ExpectedVersion(meowmxdriver.ExpectedNoStream)
	// StreamExists appends only to a stream that has at least one event.
	StreamExists ExpectedVersion = ExpectedVersion(meowmxdriver.ExpectedStreamExists)
)

// Exact expects the stream to be at version v: its last event has version
// v. Exact(-1) is NoStream; below -1 is invalid and refused by Append.
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// String returns "any", "no-stream", "exists" or the version.
func (e ExpectedVersion) String() string {
	switch e {
	case AnyVersion:
		return "any"
	case NoStream:
		return "no-stream"
	case StreamExists:
		return "exists"
	}
	return strconv.FormatInt(int64(e), 10)
}

// ParseExpectedVersion reads the forms String writes: "any", "no-stream",
// "exists" or a version of 0 or more.
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
		return 0, &ArgumentError{Arg: "expected version", Reason: strconv.Quote(s) + " is not any, no-stream, exists or a version >= -1"}
	}
	return ExpectedVersion(v), nil
}

func (e ExpectedVersion) valid() bool {
	return e >= -1 || e == AnyVersion || e == StreamExists
}

// matches tells whether a stream at version actual (-1: none) satisfies e.
func (e ExpectedVersion) matches(actual int64) bool {
	switch e {
	case AnyVersion:
		return true
	case StreamExists:
		return actual >= 0
	}
	return int64(e) == actual
}
