package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/natsserver"
	"github.com/meowmx/meowmx/meowmxnats"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// TestRun relays events of a store to a nats-server of the test's own and
// reads them with the example, twice: the durable consumer goes on after
// what it acknowledged.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := natsserver.Start(t)
	driver, err := meowmxsqlite.Open(ctx, meowmxsqlite.Memory, nil)
	require.NoError(t, err)
	defer driver.Close()
	store, err := meowmx.NewStore(driver, nil)
	require.NoError(t, err)
	_, err = store.Migrate(ctx, nil)
	require.NoError(t, err)
	appendEv := func(typ, id, data string) {
		_, err := store.Append(ctx, meowmx.StreamID{Type: typ, ID: id}, meowmx.AnyVersion,
			meowmx.EventData{Type: "Fed", Data: json.RawMessage(data)})
		require.NoError(t, err)
	}
	appendEv("cat", "blanco", `{"food":"tuna"}`)
	appendEv("dog", "rex", `{"food":"bone"}`)
	appendEv("cat", "chat.noir", `{"food":"milk"}`)

	nc, err := nats.Connect(srv.URL(), nats.ReconnectBufSize(-1))
	require.NoError(t, err)
	defer nc.Close()
	rctx, stopRelay := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- meowmxnats.Run(rctx, store, nc, nil) }()
	defer func() { stopRelay(); require.NoError(t, <-done) }()
	require.NoError(t, store.WaitForSubscription(ctx, meowmxnats.NameDefault)) // the stream exists

	c := config{url: srv.URL(), stream: meowmxnats.StreamDefault, prefix: meowmxnats.SubjectPrefixDefault,
		typ: "cat", durable: "cats"}
	var out bytes.Buffer
	require.NoError(t, run(ctx, c, &out, 2))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)
	require.Contains(t, lines[0], `cat/blanco v0 Fed {"food":"tuna"}`)
	require.Contains(t, lines[1], `cat/chat.noir v0 Fed {"food":"milk"}`)

	appendEv("cat", "blanco", `{"food":"salmon"}`)
	out.Reset()
	require.NoError(t, run(ctx, c, &out, 1)) // a restart of the service
	require.Contains(t, out.String(), `cat/blanco v1 Fed {"food":"salmon"}`)
}
