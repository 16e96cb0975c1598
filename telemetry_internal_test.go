package meowmx

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace/noop"
)

func TestWithTraceParent(t *testing.T) {
	t.Parallel()
	const member = `"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"`
	for _, c := range []struct {
		name, in, want string
		null           bool // in is nil
	}{
		{name: "nil", null: true, want: `{` + member + `}`},
		{name: "empty object", in: `{}`, want: `{` + member + `}`},
		{name: "empty object with spaces", in: ` { } `, want: `{` + member + ` } `},
		{name: "object", in: `{"who":"me"}`, want: `{` + member + `,"who":"me"}`},
		{name: "object with spaces", in: ` {  "who" : 1 }`, want: `{` + member + `,  "who" : 1 }`},
		{name: "array: unchanged", in: `[1,2]`, want: `[1,2]`},
		{name: "string: unchanged", in: `"x"`, want: `"x"`},
		{name: "the key already there: unchanged", in: `{"traceparent":"mine"}`, want: `{"traceparent":"mine"}`},
		{name: "the key nested: unchanged", in: `{"a":{"traceparent":"x"}}`, want: `{"a":{"traceparent":"x"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var in []byte
			if !c.null {
				in = []byte(c.in)
			}
			out := withTraceParent(in, member)
			require.Equal(t, c.want, string(out))
			require.True(t, json.Valid(out), "still JSON")
			require.True(t, sameMetadata(out, in), "an idempotent retry recognizes the metadata it stored")
			if !c.null {
				require.Equal(t, c.in, string(in), "the caller's metadata is not modified")
			}
		})
	}
	require.False(t, sameMetadata([]byte(`{`+member+`,"who":"me"}`), []byte(`{"who":"you"}`)), "other metadata differs")
	require.False(t, sameMetadata([]byte(`{`+member+`}`), []byte(`{"who":"you"}`)))
	require.False(t, sameMetadata([]byte(`{`+member+`,"who":"me"}`), nil))
}

func TestTracingOffWithNoopProviders(t *testing.T) {
	t.Parallel()
	tel, err := newTelemetry(noop.NewTracerProvider(), nil, "sqlite")
	require.NoError(t, err)
	require.False(t, tel.tracing(), "a no-op provider starts no span")
	var nilTel *telemetry
	require.False(t, nilTel.tracing())
	ctx, a := tel.startAppend(context.Background(), "append", StreamID{Type: "cat", ID: "x"}, AnyVersion, 1)
	require.Nil(t, a.span)
	require.Equal(t, context.Background(), ctx, "no span in the context")

	// No test of this package sets otel's global providers: the global
	// tracer provider is the unset delegate, and traces nothing.
	global, err := newTelemetry(nil, nil, "sqlite")
	require.NoError(t, err)
	require.NotNil(t, global.unsetGlobal, "the global provider, none set, is recognized")
	require.False(t, global.tracing())
}

// TestGroupCommitBatchSizes: the batch sizes sent are reported, and each
// append learns the size of the batch it went in.
func TestGroupCommitBatchSizes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sizes []int
	g, f, plug, plugOut := busy(t, GroupCommitConfig{MaxBatch: 8})
	g.onBatch = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }
	out := start(context.Background(), g, ids(12, "s")...)
	require.Eventually(t, func() bool { return g.queued() == 12 }, 30*time.Second, time.Millisecond)
	plug.commit()
	require.Equal(t, 1, collect(t, plugOut, 1)["plug"].batch, "a lone append goes in a batch of one")
	f.next(t).commit()
	f.next(t).commit()
	var got []int
	for _, r := range collect(t, out, 12) {
		got = append(got, r.batch)
	}
	slices.Sort(got)
	require.Equal(t, []int{4, 4, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8}, got)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{8, 4}, sizes, "the plug was sent before onBatch was set")
}

// TestTelemetryAllocFree: with no-op providers, and with otel's global
// providers while none is set, the hooks on the hot paths (an append, a
// page read, a handler call) allocate nothing. (Not parallel:
// AllocsPerRun refuses.)
func TestTelemetryAllocFree(t *testing.T) {
	noopTel, err := newTelemetry(noop.NewTracerProvider(), metricnoop.NewMeterProvider(), "postgres")
	require.NoError(t, err)
	globalTel, err := newTelemetry(nil, nil, "postgres")
	require.NoError(t, err)
	for name, tel := range map[string]*telemetry{"off": nil, "noop": noopTel, "global": globalTel} {
		st := tel.track("view#3", 3, 8)
		ctx := context.Background()
		res := &AppendResult{Version: 1, Events: []AppendedEvent{{Version: 1}}}
		evs := []*RecordedEvent{{Metadata: []byte(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`)}}
		allocs := testing.AllocsPerRun(100, func() {
			actx, a := tel.startAppend(ctx, "append", StreamID{Type: "cat", ID: "x"}, AnyVersion, 1)
			tel.recordBatch(4)
			tel.endAppend(actx, a, res, 4, nil)
			rctx, span := st.startRead(ctx, Position{})
			endRead(span, 1, nil)
			hctx, h := st.startHandler(rctx, evs, 0)
			st.endHandler(hctx, h, nil)
			st.handledN(ctx, 1)
			st.retried(ctx)
		})
		st.untrack()
		require.Zero(t, allocs, "%s: allocations per append, read and handler call", name)
	}
}
