package meowmxnats

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// filters returns the subject filters the relay publishes under: one per
// aggregate type, or one for all.
func (c *Config) filters() []string {
	if len(c.AggregateTypes) == 0 {
		return []string{c.SubjectPrefix + ".*.*"}
	}
	out := make([]string, len(c.AggregateTypes))
	for i, t := range c.AggregateTypes {
		out[i] = c.SubjectPrefix + "." + EncodeToken(t) + ".*"
	}
	return out
}

// streamConfig returns the configuration of the stream to create.
func (c *Config) streamConfig() jetstream.StreamConfig {
	var sc jetstream.StreamConfig
	if c.StreamConfig != nil {
		sc = *c.StreamConfig
	}
	sc.Name = c.Stream
	if len(sc.Subjects) == 0 {
		sc.Subjects = []string{c.SubjectPrefix + ".>"}
	} else {
		sc.Subjects = slices.Clone(sc.Subjects)
	}
	if sc.Duplicates == 0 {
		sc.Duplicates = DuplicatesDefault
	}
	return sc
}

// checkStream returns a *StreamConfigError when a stream's configuration
// cannot hold the relay's messages.
func (c *Config) checkStream(sc *jetstream.StreamConfig) error {
	if sc.NoAck {
		return &StreamConfigError{Stream: sc.Name, Subjects: sc.Subjects,
			Reason: "it acknowledges no message (no_ack), and the relay checkpoints only what is acknowledged"}
	}
	for _, f := range c.filters() {
		if !slices.ContainsFunc(sc.Subjects, func(s string) bool { return covers(s, f) }) {
			return &StreamConfigError{Stream: sc.Name, Subjects: sc.Subjects, Need: f,
				Reason: fmt.Sprintf("none of its subjects covers %q: add %q to them, or choose another stream or --subject-prefix", f, c.SubjectPrefix+".>")}
		}
	}
	return nil
}

// ensureStream creates the relay's stream when it is missing, and checks
// it when it exists. It returns a *StreamConfigError when the stream
// cannot hold the relay's messages, and a *natsFailure when NATS did not
// answer.
func (r *relay) ensureStream(ctx context.Context) error {
	s, err := r.js.Stream(ctx, r.c.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		sc := r.c.streamConfig()
		if err := r.c.checkStream(&sc); err != nil {
			return err
		}
		s, err = r.js.CreateStream(ctx, sc)
		switch {
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			s, err = r.js.Stream(ctx, r.c.Stream) // another relay created it meanwhile
		case err != nil && isAPIError(err):
			return &StreamConfigError{Stream: sc.Name, Subjects: sc.Subjects,
				Reason: "JetStream refused to create it: " + err.Error()}
		case err == nil:
			r.log.InfoContext(ctx, "meowmxnats: created the JetStream stream", "subjects", sc.Subjects,
				"retention", sc.Retention.String(), "duplicates", sc.Duplicates)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &natsFailure{fmt.Errorf("stream %q: %w", r.c.Stream, err)}
	}
	info := s.CachedInfo()
	return r.c.checkStream(&info.Config)
}

// isAPIError tells whether JetStream answered with an error (rather than
// not answering).
func isAPIError(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae)
}
