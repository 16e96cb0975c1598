package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/meowmx/meowmx"
)

// TestTelemetryGroupCommit: on PostgreSQL, concurrent appends report the
// size of the group-commit batch each went in, the batch-size histogram
// adds up to the appends, and the trace context stored in the metadata
// (a JSON column) comes back byte for byte, so that an idempotent retry
// still recognizes its events.
func TestTelemetryGroupCommit(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s, _, _ := newSchemaStore(t, nil, &meowmx.Config{TracerProvider: tp, MeterProvider: mp})
	ctx := context.Background()

	const writers = 16
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			_, err := s.Append(ctx, meowmx.StreamID{Type: "acct", ID: fmt.Sprint("a", g)}, meowmx.NoStream,
				meowmx.EventData{Type: "Opened", Data: json.RawMessage(`{}`), Metadata: json.RawMessage(`{"by": "test"}`)})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	sent := 0
	for _, sp := range spans.Ended() {
		if sp.Name() != "send acct" {
			continue
		}
		sent++
		var batch int64
		for _, kv := range sp.Attributes() {
			if kv.Key == "meowmx.group_commit.batch_size" {
				batch = kv.Value.AsInt64()
			}
		}
		require.GreaterOrEqual(t, batch, int64(1), "each grouped append tells its batch's size")
	}
	require.Equal(t, writers, sent)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	var sizes metricdata.HistogramDataPoint[int64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "meowmx.group_commit.batch_size" {
				sizes = m.Data.(metricdata.Histogram[int64]).DataPoints[0]
			}
		}
	}
	require.Equal(t, int64(writers), sizes.Sum, "the batches hold every append once")
	require.LessOrEqual(t, sizes.Count, uint64(writers))

	evs, err := s.ReadStream(ctx, "a0", nil)
	require.NoError(t, err)
	require.Regexp(t, `^\{"traceparent":"00-[0-9a-f]{32}-[0-9a-f]{16}-01",\s*"by": "test"\}$`, string(evs[0].Metadata))

	ev := meowmx.EventData{UUID: uuid.New(), Type: "Deposited", Data: json.RawMessage(`{}`)}
	first, err := s.Append(ctx, meowmx.StreamID{Type: "acct", ID: "a0"}, meowmx.Exact(0), ev)
	require.NoError(t, err)
	again, err := s.Append(ctx, meowmx.StreamID{Type: "acct", ID: "a0"}, meowmx.Exact(0), ev)
	require.NoError(t, err, "an idempotent retry in another span")
	require.Equal(t, first.Events, again.Events)
}
