package meowmx_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// telemetryStore is a store on an SQLite file, with an SDK tracer that
// records every span and a manual metric reader.
type telemetryStore struct {
	store  *meowmx.Store[*sql.Tx]
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newTelemetryStore(t *testing.T, path string, sampler sdktrace.Sampler) *telemetryStore {
	t.Helper()
	ctx := context.Background()
	if path == "" {
		path = filepath.Join(t.TempDir(), "events.db")
	}
	driver, err := meowmxsqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = driver.Close() })
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans), sdktrace.WithSampler(sampler))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s, err := meowmx.NewStore(driver, &meowmx.Config{TracerProvider: tp, MeterProvider: mp})
	require.NoError(t, err)
	_, err = s.Migrate(ctx, nil)
	require.NoError(t, err)
	return &telemetryStore{store: s, spans: spans, reader: reader}
}

// ended returns the ended spans named name.
func (ts *telemetryStore) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range ts.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// metrics collects the metrics, by name.
func (ts *telemetryStore) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, ts.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

// counts returns a histogram's counts, or a sum's values, by the value of
// attribute key.
func counts(t *testing.T, m metricdata.Metrics, key attribute.Key) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	label := func(set attribute.Set) string {
		v, _ := set.Value(key)
		return v.Emit()
	}
	switch d := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out[label(p.Attributes)] += int64(p.Count)
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			out[label(p.Attributes)] += int64(p.Count)
		}
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out[label(p.Attributes)] += p.Value
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out[label(p.Attributes)] = p.Value
		}
	default:
		t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
	}
	return out
}

func gaugeFloat(t *testing.T, m metricdata.Metrics, key attribute.Key) map[string]float64 {
	t.Helper()
	d, ok := m.Data.(metricdata.Gauge[float64])
	require.True(t, ok, "%s: %T", m.Name, m.Data)
	out := map[string]float64{}
	for _, p := range d.DataPoints {
		v, _ := p.Attributes.Value(key)
		out[v.Emit()] = p.Value
	}
	return out
}

func traceParent(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// TestTelemetryAppend: an append's span tells its stream, expected
// version, event count and outcome; the events' metadata holds its trace
// context, ahead of the caller's keys; the metrics count the appends by
// outcome and the events appended. An idempotent retry, in another span,
// still finds its events.
func TestTelemetryAppend(t *testing.T) {
	t.Parallel()
	ts := newTelemetryStore(t, "", sdktrace.AlwaysSample())
	ctx := context.Background()
	cat := meowmx.StreamID{Type: "cat", ID: "felix"}
	res, err := ts.store.Append(ctx, cat, meowmx.NoStream,
		meowmx.EventData{Type: "Adopted", Data: json.RawMessage(`{}`)},
		meowmx.EventData{Type: "Fed", Data: json.RawMessage(`{}`), Metadata: json.RawMessage(`{"who":"me"}`)},
		meowmx.EventData{Type: "Named", Data: json.RawMessage(`{}`), Metadata: json.RawMessage(`[1]`)})
	require.NoError(t, err)
	_, err = ts.store.Append(ctx, cat, meowmx.NoStream, meowmx.EventData{Type: "Adopted", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, meowmx.ErrConcurrency)
	_, err = ts.store.Append(ctx, meowmx.StreamID{Type: "cat", ID: ""}, meowmx.NoStream, meowmx.EventData{Type: "A", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument)

	spans := ts.ended("send cat")
	require.Len(t, spans, 3)
	a := attrs(spans[0])
	require.Equal(t, trace.SpanKindProducer, spans[0].SpanKind())
	require.Equal(t, "ok", a["meowmx.outcome"].AsString())
	require.Equal(t, "felix", a["meowmx.stream.id"].AsString())
	require.Equal(t, "cat", a["messaging.destination.name"].AsString())
	require.Equal(t, "sqlite", a["db.system.name"].AsString())
	require.Equal(t, meowmx.NoStream.String(), a["meowmx.expected_version"].AsString())
	require.Equal(t, int64(3), a["meowmx.event.count"].AsInt64())
	require.Equal(t, res.Version, a["meowmx.version"].AsInt64())
	require.Equal(t, "conflict", attrs(spans[1])["meowmx.outcome"].AsString())
	require.Equal(t, "error", attrs(spans[2])["meowmx.outcome"].AsString())
	require.Equal(t, "Error", spans[2].Status().Code.String())

	tp := traceParent(spans[0].SpanContext())
	evs, err := ts.store.ReadStream(ctx, "felix", nil)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	require.JSONEq(t, `{"traceparent":"`+tp+`"}`, string(evs[0].Metadata))
	require.Equal(t, `{"traceparent":"`+tp+`","who":"me"}`, string(evs[1].Metadata), "the trace context goes first, the caller's bytes follow")
	require.Equal(t, `[1]`, string(evs[2].Metadata), "metadata that is not an object is kept as given")

	reads := ts.ended("read_stream")
	require.NotEmpty(t, reads, "a span per page read")
	require.Equal(t, int64(3), attrs(reads[0])["db.response.returned_rows"].AsInt64())

	m := ts.metrics(t)
	require.Equal(t, map[string]int64{"ok": 1, "conflict": 1, "error": 1}, counts(t, m["meowmx.append.duration"], "meowmx.outcome"))
	require.Equal(t, map[string]int64{"": 3}, counts(t, m["meowmx.events.appended"], "meowmx.outcome"))

	// An idempotent retry runs in another span: the stored trace context
	// differs from the one it would store, and it is still a retry.
	u := uuid.New()
	ev := meowmx.EventData{UUID: u, Type: "Purred", Data: json.RawMessage(`{}`), Metadata: json.RawMessage(`{"who":"me"}`)}
	first, err := ts.store.Append(ctx, cat, meowmx.Exact(res.Version), ev)
	require.NoError(t, err)
	again, err := ts.store.Append(ctx, cat, meowmx.Exact(res.Version), ev)
	require.NoError(t, err, "a retry of an append stored with a trace context")
	require.Equal(t, first.Events, again.Events)
	ev.Metadata = json.RawMessage(`{"who":"you"}`)
	_, err = ts.store.Append(ctx, cat, meowmx.Exact(res.Version), ev)
	require.ErrorIs(t, err, meowmx.ErrDuplicateEvent, "other metadata is still other content")
}

// TestTelemetryMetadataUnchangedWhenNotTracing: when the append's span is
// not sampled, or no tracer provider is set, metadata is stored as given.
func TestTelemetryMetadataUnchangedWhenNotTracing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTelemetryStore(t, "", sdktrace.NeverSample())
	driver, err := meowmxsqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = driver.Close() })
	plain, err := meowmx.NewStore(driver, nil) // the global providers: none is set in these tests
	require.NoError(t, err)
	_, err = plain.Migrate(ctx, nil)
	require.NoError(t, err)
	for _, s := range []interface {
		Append(context.Context, meowmx.StreamID, meowmx.ExpectedVersion, ...meowmx.EventData) (*meowmx.AppendResult, error)
		ReadStream(context.Context, string, *meowmx.ReadStreamOpts) ([]*meowmx.RecordedEvent, error)
	}{ts.store, plain} {
		_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "tom"}, meowmx.NoStream,
			meowmx.EventData{Type: "A", Data: json.RawMessage(`{}`)},
			meowmx.EventData{Type: "B", Data: json.RawMessage(`{}`), Metadata: json.RawMessage(`{"who":"me"}`)})
		require.NoError(t, err)
		evs, err := s.ReadStream(ctx, "tom", nil)
		require.NoError(t, err)
		require.Nil(t, evs[0].Metadata)
		require.Equal(t, `{"who":"me"}`, string(evs[1].Metadata))
	}
}

// TestTelemetrySubscription runs a known workload through a subscription
// (a retry that succeeds, an event parked after its attempts, one parked
// behind it, a replay) and checks its spans, their links to the appends'
// spans, and the metrics.
func TestTelemetrySubscription(t *testing.T) {
	t.Parallel()
	ts := newTelemetryStore(t, "", sdktrace.AlwaysSample())
	ctx := context.Background()
	appendSpans := map[string]trace.SpanContext{} // by event type
	for _, e := range []struct{ stream, typ string }{{"a", "A0"}, {"b", "B0"}, {"c", "C0"}, {"a", "A1"}} {
		_, err := ts.store.Append(ctx, meowmx.StreamID{Type: "cat", ID: e.stream}, meowmx.AnyVersion,
			meowmx.EventData{Type: e.typ, Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		sent := ts.ended("send cat")
		appendSpans[e.typ] = sent[len(sent)-1].SpanContext()
	}
	var healed atomic.Bool // A0 fails until then
	var b0Failed atomic.Bool
	var mu sync.Mutex
	var calls []string
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- ts.store.RunSubscription(runCtx, &meowmx.SubscriptionConfig[*sql.Tx]{
			Name: "view", MaxAttempts: 2, RetryBackoff: time.Millisecond, OnFailure: meowmx.FailurePark,
			PollInterval: 5 * time.Millisecond, LockInterval: 50 * time.Millisecond,
			Handler: meowmx.HandlerFunc[*sql.Tx](func(ctx context.Context, _ *sql.Tx, ev *meowmx.RecordedEvent) error {
				mu.Lock()
				calls = append(calls, ev.Type)
				mu.Unlock()
				if !trace.SpanContextFromContext(ctx).IsValid() {
					return errors.New("the handler's context has no span")
				}
				switch {
				case ev.Type == "A0" && !healed.Load():
					return errors.New("A0 fails")
				case ev.Type == "B0" && b0Failed.CompareAndSwap(false, true):
					return errors.New("B0 fails once")
				}
				return nil
			}),
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.NoError(t, ts.store.WaitForSubscription(ctx, "view"))

	mu.Lock()
	require.Equal(t, []string{"A0", "A0", "B0", "B0", "C0"}, calls, "A1 waits behind A0, parked")
	mu.Unlock()
	m := ts.metrics(t)
	require.Equal(t, map[string]int64{"view": 2}, counts(t, m["meowmx.subscription.handled"], "meowmx.subscription"), "B0 and C0")
	require.Equal(t, map[string]int64{"view": 2}, counts(t, m["meowmx.subscription.parked"], "meowmx.subscription"), "A0, and A1 behind it")
	require.Equal(t, map[string]int64{"view": 2}, counts(t, m["meowmx.subscription.retries"], "meowmx.subscription"), "A0's and B0's second attempts")
	require.Equal(t, map[string]int64{"ok": 2, "error": 3}, counts(t, m["meowmx.subscription.handler.duration"], "meowmx.outcome"))
	require.Equal(t, map[string]int64{"view": 0}, counts(t, m["meowmx.subscription.lag"], "meowmx.subscription"), "caught up")
	require.Equal(t, map[string]int64{"": 1}, counts(t, m["meowmx.listener.connected"], "meowmx.subscription"), "the listener (SQLite's probe) runs")
	require.Equal(t, map[string]float64{"": 0}, gaugeFloat(t, m["meowmx.horizon.age"], "meowmx.subscription"), "nothing holds SQLite's horizon")

	process := ts.ended("process view")
	require.Len(t, process, 5)
	for i, want := range []struct {
		typ, outcome string
		attempt      int64
	}{{"A0", "error", 1}, {"A0", "error", 2}, {"B0", "error", 1}, {"B0", "ok", 2}, {"C0", "ok", 1}} {
		s := process[i]
		a := attrs(s)
		require.Equal(t, trace.SpanKindConsumer, s.SpanKind())
		require.Equal(t, want.outcome, a["meowmx.outcome"].AsString(), i)
		require.Equal(t, want.attempt, a["meowmx.attempt"].AsInt64(), i)
		require.Equal(t, "view", a["messaging.consumer.group.name"].AsString())
		require.Len(t, s.Links(), 1)
		require.Equal(t, traceParent(appendSpans[want.typ]), traceParent(s.Links()[0].SpanContext), "%s's handler span links to its append's span", want.typ)
	}
	parks := ts.ended("park view")
	require.Len(t, parks, 1)
	require.Equal(t, traceParent(appendSpans["A0"]), traceParent(parks[0].Links()[0].SpanContext))
	require.NotEmpty(t, ts.ended("read_all"), "the subscription's page reads")

	// Replay: A0 now succeeds, and A1 after it.
	healed.Store(true)
	n, err := ts.store.ReplayParked(ctx, "view", nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, ts.store.WaitForSubscription(ctx, "view"))
	replays := ts.ended("replay view")
	require.Len(t, replays, 2)
	for i, typ := range []string{"A0", "A1"} {
		require.True(t, attrs(replays[i])["meowmx.replayed"].AsBool())
		require.Equal(t, traceParent(appendSpans[typ]), traceParent(replays[i].Links()[0].SpanContext))
	}
	m = ts.metrics(t)
	require.Equal(t, map[string]int64{"view": 4}, counts(t, m["meowmx.subscription.handled"], "meowmx.subscription"), "A0 and A1 replayed")
}

// TestTelemetryLag: while the handler holds on to an event, the owner's
// lag gauges count the events after its checkpoint and the age of the
// oldest.
func TestTelemetryLag(t *testing.T) {
	t.Parallel()
	ts := newTelemetryStore(t, "", sdktrace.AlwaysSample())
	ctx := context.Background()
	held, release := make(chan struct{}), make(chan struct{})
	isHeld := held
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- ts.store.RunSubscription(runCtx, &meowmx.SubscriptionConfig[*sql.Tx]{
			Name: "slow", PollInterval: 5 * time.Millisecond,
			Handler: meowmx.HandlerFunc[*sql.Tx](func(ctx context.Context, _ *sql.Tx, ev *meowmx.RecordedEvent) error {
				if ev.Version == 0 && held != nil {
					close(held)
					held = nil // handled again after a rollback: do not close twice
					select {
					case <-release:
					case <-ctx.Done(): // the test failed first
						return ctx.Err()
					}
				}
				return nil
			}),
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	for range 3 {
		_, err := ts.store.Append(ctx, meowmx.StreamID{Type: "cat", ID: "x"}, meowmx.AnyVersion, meowmx.EventData{Type: "A", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	<-isHeld
	time.Sleep(10 * time.Millisecond) // the events' age, measured at collection
	m := ts.metrics(t)
	require.Equal(t, map[string]int64{"slow": 3}, counts(t, m["meowmx.subscription.lag"], "meowmx.subscription"))
	require.Greater(t, gaugeFloat(t, m["meowmx.subscription.lag.age"], "meowmx.subscription")["slow"], 0.0)
	close(release)
	require.NoError(t, ts.store.WaitForSubscription(ctx, "slow"))
	require.Equal(t, map[string]int64{"slow": 0}, counts(t, ts.metrics(t)["meowmx.subscription.lag"], "meowmx.subscription"))
}

// telemetryChildEnv names the SQLite file that the child process of
// TestTelemetryAcrossProcesses handles.
const telemetryChildEnv = "MEOWMX_TELEMETRY_CHILD_DB"

// TestTelemetryAcrossProcesses: an event appended in this process is
// handled by a subscription in another (this test binary again, on the
// same SQLite file, with a tracer provider of its own): the handler's
// span there links to the append's span here.
func TestTelemetryAcrossProcesses(t *testing.T) {
	if path := os.Getenv(telemetryChildEnv); path != "" {
		telemetryChild(t, path)
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	ts := newTelemetryStore(t, path, sdktrace.AlwaysSample())
	ctx := context.Background()
	_, err := ts.store.Append(ctx, meowmx.StreamID{Type: "cat", ID: "felix"}, meowmx.NoStream, meowmx.EventData{Type: "Adopted", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	sent := ts.ended("send cat")
	require.Len(t, sent, 1)

	exe, err := os.Executable()
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, exe, "-test.run", "^TestTelemetryAcrossProcesses$", "-test.count", "1")
	cmd.Env = append(os.Environ(), telemetryChildEnv+"="+path)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var links []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "LINK "); ok {
			links = append(links, l)
		}
	}
	require.Equal(t, []string{traceParent(sent[0].SpanContext())}, links, "the other process's handler span links to the append: %s", out)
}

// telemetryChild handles the file's first event with a tracer of its own
// and prints the links of its handler's span.
func telemetryChild(t *testing.T, path string) {
	ts := newTelemetryStore(t, path, sdktrace.AlwaysSample())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := ts.store.RunSubscription(ctx, &meowmx.SubscriptionConfig[*sql.Tx]{
		Name: "other-process", PollInterval: 5 * time.Millisecond,
		Handler: meowmx.HandlerFunc[*sql.Tx](func(context.Context, *sql.Tx, *meowmx.RecordedEvent) error {
			cancel()
			return nil
		}),
	})
	require.NoError(t, err)
	for _, s := range ts.ended("process other-process") {
		for _, l := range s.Links() {
			fmt.Println("LINK " + traceParent(l.SpanContext))
		}
	}
}

// TestTelemetryGroup: a consumer group's metrics are reported under the
// group's name, its handler spans name the partition, and a batch
// handler's span counts its batch.
func TestTelemetryGroup(t *testing.T) {
	t.Parallel()
	ts := newTelemetryStore(t, "", sdktrace.AlwaysSample())
	ctx := context.Background()
	for i := range 8 {
		_, err := ts.store.Append(ctx, meowmx.StreamID{Type: "cat", ID: fmt.Sprint("c", i)}, meowmx.NoStream,
			meowmx.EventData{Type: "A", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	tx, err := ts.store.Driver().(*meowmxsqlite.Driver).DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = ts.store.AppendTx(ctx, tx, meowmx.StreamID{Type: "cat", ID: "c0"}, meowmx.Exact(0), meowmx.EventData{Type: "B", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	sent := ts.ended("send cat")
	require.Equal(t, "append_tx", attrs(sent[len(sent)-1])["messaging.operation.name"].AsString())

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- ts.store.RunSubscription(runCtx, &meowmx.SubscriptionConfig[*sql.Tx]{
			Name: "grp", Partitions: 4, PollInterval: 5 * time.Millisecond, LockInterval: 20 * time.Millisecond,
			BatchHandler: meowmx.BatchHandlerFunc[*sql.Tx](func(context.Context, *sql.Tx, []*meowmx.RecordedEvent) error { return nil }),
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.NoError(t, ts.store.WaitForSubscription(ctx, "grp"))
	m := ts.metrics(t)
	require.Equal(t, map[string]int64{"grp": 9}, counts(t, m["meowmx.subscription.handled"], "meowmx.subscription"))
	require.Eventually(t, func() bool { // each partition's worker owns its partition
		lag, ok := counts(t, ts.metrics(t)["meowmx.subscription.lag"], "meowmx.subscription")["grp"]
		return ok && lag == 0
	}, 30*time.Second, 5*time.Millisecond)
	events, partitions := int64(0), map[int64]bool{}
	for _, s := range ts.ended("process grp") {
		a := attrs(s)
		events += a["messaging.batch.message_count"].AsInt64()
		partitions[a["meowmx.partition"].AsInt64()] = true
		require.Equal(t, len(s.Links()), int(a["messaging.batch.message_count"].AsInt64()), "a link per event")
	}
	require.Equal(t, int64(9), events)
	require.Greater(t, len(partitions), 1, "the events' streams fall in several partitions")
}
