package meowmx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TraceParentKey is the key, in an event's JSON metadata, under which
// Append and AppendTx store the W3C trace context (the traceparent header's
// value, "00-<trace id>-<span id>-<flags>") of the span that appended the
// event, so that the spans of the subscriptions that handle it, in any
// process, link to it. It is stored only while tracing is on (the append's
// span is sampled), only in metadata that is nil or a JSON object, and
// never when the metadata already mentions the key: otherwise the metadata
// is stored byte for byte as given. The key goes first in the object:
// {"traceparent":"00-…-01", …the caller's keys}.
const TraceParentKey = "traceparent"

// instrumentationName names meowmx's tracer and meter.
const instrumentationName = "github.com/meowmx/meowmx"

// Outcomes, the meowmx.outcome attribute of spans and metrics.
const (
	outcomeOK       = "ok"
	outcomeConflict = "conflict"
	outcomeError    = "error"
)

// Attribute keys of meowmx's own, beside the semantic conventions'.
const (
	keyOutcome       = attribute.Key("meowmx.outcome")
	keyStreamType    = attribute.Key("meowmx.stream.type")
	keyStreamID      = attribute.Key("meowmx.stream.id")
	keyExpected      = attribute.Key("meowmx.expected_version")
	keyVersion       = attribute.Key("meowmx.version")
	keyEventCount    = attribute.Key("meowmx.event.count")
	keyBatchSize     = attribute.Key("meowmx.group_commit.batch_size")
	keySubscription  = attribute.Key("meowmx.subscription")
	keyPartition     = attribute.Key("meowmx.partition")
	keyPositionFirst = attribute.Key("meowmx.position.first")
	keyPositionLast  = attribute.Key("meowmx.position.last")
	keyAttempt       = attribute.Key("meowmx.attempt")
	keyPosition      = attribute.Key("meowmx.position")
	keyReplayed      = attribute.Key("meowmx.replayed")
)

// Histogram buckets: durations in seconds, from 100µs to 10s; batch
// sizes in appends, powers of two.
var (
	durationBuckets  = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	batchSizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000}
)

// telemetry is a store's traces and metrics (Config.TracerProvider and
// Config.MeterProvider). A nil *telemetry records nothing: every method
// works on it.
type telemetry struct {
	tracer trace.Tracer
	// noTrace: the tracer provider is a no-op one; spans are never
	// started, so that tracing costs nothing (not even an allocation).
	noTrace bool
	// unsetGlobal is the global tracer provider's delegate, when the store
	// uses the global provider and none was set when the store was made:
	// spans start once otel.SetTracerProvider has been called.
	unsetGlobal trace.TracerProvider
	dbSystem    attribute.KeyValue

	appendDuration metric.Float64Histogram
	appendOpts     map[string][]metric.RecordOption // by outcome
	appended       metric.Int64Counter
	batchSize      metric.Int64Histogram

	handled         metric.Int64Counter
	handlerDuration metric.Float64Histogram
	parked          metric.Int64Counter
	retries         metric.Int64Counter
	lag             metric.Int64ObservableGauge
	lagAge          metric.Float64ObservableGauge
	horizonAge      metric.Float64ObservableGauge
	connected       metric.Int64ObservableGauge

	// What the observable gauges read, on demand.
	listSubscriptions func(context.Context) ([]*SubscriptionInfo, error)
	oldestHolder      func(context.Context) (time.Duration, error)
	listening         func() bool

	mu    sync.Mutex
	subs  map[*subTelemetry]struct{} // the subscriptions running on the store
	reg   metric.Registration        // the gauges' callback, while subs is not empty
	meter metric.Meter
}

// newTelemetry makes a store's telemetry from its config's providers (the
// global ones when nil).
func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider, driverName string) (*telemetry, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &telemetry{subs: map[*subTelemetry]struct{}{}}
	switch fmt.Sprintf("%T", tp) {
	case "noop.TracerProvider", "trace.noopTracerProvider":
		t.noTrace = true
	case "*global.tracerProvider": // otel's global, none set yet
		t.unsetGlobal = tp
	}
	if _, ok := tp.(noop.TracerProvider); ok {
		t.noTrace = true
	}
	t.tracer = tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL))
	switch driverName {
	case "postgres":
		t.dbSystem = semconv.DBSystemNamePostgreSQL
	case "sqlite":
		t.dbSystem = semconv.DBSystemNameSQLite
	default:
		t.dbSystem = semconv.DBSystemNameKey.String(driverName)
	}
	m := mp.Meter(instrumentationName, metric.WithSchemaURL(semconv.SchemaURL))
	t.meter = m
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	t.appendDuration, err = m.Float64Histogram("meowmx.append.duration", metric.WithUnit("s"),
		metric.WithDescription("Time taken by Store.Append and AppendTx, by outcome (ok, conflict, error); its count is the appends by outcome."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	t.appended, err = m.Int64Counter("meowmx.events.appended", metric.WithUnit("{event}"),
		metric.WithDescription("Events appended (committed or, through AppendTx, written in the caller's transaction)."))
	check(err)
	t.batchSize, err = m.Int64Histogram("meowmx.group_commit.batch_size", metric.WithUnit("{append}"),
		metric.WithDescription("Appends per group-commit transaction."), metric.WithExplicitBucketBoundaries(batchSizeBuckets...))
	check(err)
	t.handled, err = m.Int64Counter("meowmx.subscription.handled", metric.WithUnit("{event}"),
		metric.WithDescription("Events handled by a subscription's handler and committed with its checkpoint, by this process."))
	check(err)
	t.handlerDuration, err = m.Float64Histogram("meowmx.subscription.handler.duration", metric.WithUnit("s"),
		metric.WithDescription("Time taken by one call of a subscription's handler (one event, or a batch), by outcome (ok, error)."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	t.parked, err = m.Int64Counter("meowmx.subscription.parked", metric.WithUnit("{event}"),
		metric.WithDescription("Events parked by a subscription: failed every attempt, or behind a parked event of their stream."))
	check(err)
	t.retries, err = m.Int64Counter("meowmx.subscription.retries", metric.WithUnit("{attempt}"),
		metric.WithDescription("Handler attempts after a failure (the second and later attempts at an event)."))
	check(err)
	t.lag, err = m.Int64ObservableGauge("meowmx.subscription.lag", metric.WithUnit("{event}"),
		metric.WithDescription("Events after the checkpoint of the subscription (of the partitions of a consumer group) that this process owns; exact up to LagCountMax each, estimated beyond."))
	check(err)
	t.lagAge, err = m.Float64ObservableGauge("meowmx.subscription.lag.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest event after the checkpoint of the subscription (of the partitions) that this process owns; 0 when caught up."))
	check(err)
	t.horizonAge, err = m.Float64ObservableGauge("meowmx.horizon.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest open transaction that holds the commit horizon back (PostgreSQL); 0 when none."))
	check(err)
	t.connected, err = m.Int64ObservableGauge("meowmx.listener.connected", metric.WithUnit("{connection}"),
		metric.WithDescription("1 while the store's notification listener is connected (it runs while a subscription runs), else 0."))
	check(err)
	if len(errs) > 0 {
		return nil, fmt.Errorf("meowmx: metrics: %v", errs)
	}
	t.appendOpts = map[string][]metric.RecordOption{}
	for _, o := range []string{outcomeOK, outcomeConflict, outcomeError} {
		t.appendOpts[o] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(keyOutcome.String(o)))}
	}
	return t, nil
}

// tracing tells whether spans are started.
func (t *telemetry) tracing() bool {
	return t != nil && !t.noTrace && (t.unsetGlobal == nil || otel.GetTracerProvider() != t.unsetGlobal)
}

// appendSpan is an append's (or a handler call's) span and clock.
type appendSpan struct {
	start time.Time  // zero when its latency is not recorded
	span  trace.Span // nil when tracing is off
}

// startAppend starts timing an append, and its span when tracing is on.
func (t *telemetry) startAppend(ctx context.Context, txName string, stream StreamID, expected ExpectedVersion, n int) (context.Context, appendSpan) {
	if t == nil {
		return ctx, appendSpan{}
	}
	var a appendSpan
	if t.appendDuration.Enabled(ctx) { // a no-op meter: no clock read
		a.start = time.Now()
	}
	if t.tracing() {
		// The attributes a sampler may want at the start; the others
		// only when the span records.
		ctx, a.span = t.tracer.Start(ctx, "send "+stream.Type, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				semconv.MessagingSystemKey.String("meowmx"),
				semconv.MessagingDestinationName(stream.Type),
			))
		if a.span.IsRecording() {
			a.span.SetAttributes(
				semconv.MessagingOperationName(txName),
				semconv.MessagingOperationTypeSend,
				semconv.MessagingBatchMessageCount(n),
				t.dbSystem,
				keyStreamType.String(stream.Type),
				keyStreamID.String(stream.ID),
				keyExpected.String(expected.String()),
				keyEventCount.Int(n),
			)
		}
	}
	return ctx, a
}

// endAppend records an append's outcome: batch is its group-commit batch
// size (0: not grouped).
func (t *telemetry) endAppend(ctx context.Context, a appendSpan, res *AppendResult, batch int, err error) {
	if t == nil {
		return
	}
	outcome := outcomeOf(err)
	if !a.start.IsZero() {
		t.appendDuration.Record(ctx, time.Since(a.start).Seconds(), t.appendOpts[outcome]...)
	}
	if err == nil {
		t.appended.Add(ctx, int64(len(res.Events)))
	}
	if !recording(a.span) {
		if a.span != nil {
			a.span.End()
		}
		return
	}
	a.span.SetAttributes(keyOutcome.String(outcome))
	if batch > 0 {
		a.span.SetAttributes(keyBatchSize.Int(batch))
	}
	switch {
	case err == nil:
		a.span.SetAttributes(keyVersion.Int64(res.Version))
	case outcome == outcomeError:
		a.span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
		a.span.RecordError(err)
		a.span.SetStatus(codes.Error, err.Error())
	}
	a.span.End()
}

// outcomeOf is an append's outcome.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrConcurrency):
		return outcomeConflict
	}
	return outcomeError
}

// recordBatch records the size of a group-commit batch sent.
func (t *telemetry) recordBatch(n int) {
	if t != nil {
		t.batchSize.Record(context.Background(), int64(n))
	}
}

// startRead starts the span of a page read, when tracing is on, with
// attributes base. The caller adds others when the span records.
func (t *telemetry) startRead(ctx context.Context, op string, base []attribute.KeyValue) (context.Context, trace.Span) {
	if !t.tracing() {
		return ctx, nil
	}
	return t.tracer.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(t.dbSystem, semconv.DBOperationName(op)), trace.WithAttributes(base...))
}

// recording tells whether span records (so that attributes are worth
// building).
func recording(span trace.Span) bool { return span != nil && span.IsRecording() }

// endRead ends a page read's span.
func endRead(span trace.Span, rows int, err error) {
	if !recording(span) {
		if span != nil {
			span.End()
		}
		return
	}
	span.SetAttributes(semconv.DBResponseReturnedRows(rows))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// injectTrace stores the span's trace context in the metadata of an
// append's events (see TraceParentKey).
func injectTrace(metadata [][]byte, sc trace.SpanContext) {
	if !sc.IsValid() || !sc.IsSampled() {
		return
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
	tp := carrier[TraceParentKey]
	if tp == "" {
		return
	}
	member := `"` + TraceParentKey + `":"` + tp + `"`
	for i, m := range metadata {
		metadata[i] = withTraceParent(m, member)
	}
}

// withTraceParent returns metadata with member first in its object; the
// metadata unchanged when it is not nil or an object, or mentions the key.
func withTraceParent(m []byte, member string) []byte {
	if m == nil {
		return []byte("{" + member + "}")
	}
	rest := bytes.TrimLeft(m, " \t\r\n")
	if len(rest) == 0 || rest[0] != '{' || bytes.Contains(m, []byte(`"`+TraceParentKey+`"`)) {
		return m
	}
	body := rest[1:]
	out := make([]byte, 0, len(m)+len(member)+2)
	out = append(out, '{')
	out = append(out, member...)
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] != '}' {
		out = append(out, ',')
	}
	return append(out, body...)
}

// sameMetadata tells whether stored metadata is given's, as an append
// stored it: the same bytes, or given's with a trace context added.
func sameMetadata(stored, given []byte) bool {
	if bytes.Equal(stored, given) {
		return true
	}
	prefix := `{"` + TraceParentKey + `":"`
	if !bytes.HasPrefix(stored, []byte(prefix)) {
		return false
	}
	end := bytes.IndexByte(stored[len(prefix):], '"')
	if end < 0 {
		return false
	}
	member := string(stored[1 : len(prefix)+end+1])
	return bytes.Equal(withTraceParent(given, member), stored)
}

// spanContextOf returns the trace context stored in an event's metadata;
// an invalid one when there is none.
func spanContextOf(ev *RecordedEvent) trace.SpanContext {
	if !bytes.Contains(ev.Metadata, []byte(`"`+TraceParentKey+`"`)) {
		return trace.SpanContext{}
	}
	var m struct {
		TraceParent string `json:"traceparent"`
	}
	if json.Unmarshal(ev.Metadata, &m) != nil || m.TraceParent == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{TraceParentKey: m.TraceParent})
	return trace.SpanContextFromContext(ctx)
}

// maxLinks caps the links of one span (the SDK keeps 128 by default).
const maxLinks = 128

// links returns the links to the spans that appended evs, the first
// maxLinks found.
func links(evs []*RecordedEvent) []trace.Link {
	var out []trace.Link
	for _, ev := range evs {
		if len(out) == maxLinks {
			break
		}
		if sc := spanContextOf(ev); sc.IsValid() {
			out = append(out, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{keyPosition.String(ev.Position.String())}})
		}
	}
	return out
}

// subTelemetry is the telemetry of one subscription's worker (a consumer
// group's partition, or a whole subscription).
type subTelemetry struct {
	t         *telemetry
	name      string // the subscription's, a group's for its partitions
	row       string // the row's: a partition's name for a partition
	partition int    // -1: not a partition
	owning    atomic.Bool

	attrs        []attribute.KeyValue // of spans
	processAttrs []attribute.KeyValue // of handler spans: attrs and more
	countOpts    []metric.AddOption
	okOpts       []metric.RecordOption
	errorOpts    []metric.RecordOption
	attrSet      attribute.Set
}

// track starts the telemetry of a worker running subscription row name (a
// partition of a group of partitions, when partitions > 1); untrack ends
// it. The gauges' callback is registered while one runs.
func (t *telemetry) track(name string, partition, partitions int) *subTelemetry {
	if t == nil {
		return nil
	}
	st := &subTelemetry{t: t, name: name, row: name, partition: -1}
	if partitions > 1 {
		st.partition = partition
		if i := strings.LastIndexByte(name, '#'); i > 0 {
			st.name = name[:i]
		}
	}
	st.attrSet = attribute.NewSet(keySubscription.String(st.name))
	st.countOpts = []metric.AddOption{metric.WithAttributeSet(st.attrSet)}
	st.okOpts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(keySubscription.String(st.name), keyOutcome.String(outcomeOK)))}
	st.errorOpts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(keySubscription.String(st.name), keyOutcome.String(outcomeError)))}
	st.attrs = []attribute.KeyValue{
		semconv.MessagingSystemKey.String("meowmx"),
		semconv.MessagingConsumerGroupName(st.name),
		keySubscription.String(st.name),
		t.dbSystem,
	}
	if st.partition >= 0 {
		st.attrs = append(st.attrs, keyPartition.Int(partition), semconv.MessagingDestinationPartitionID(strconv.Itoa(partition)))
	}
	st.processAttrs = append(st.attrs[:len(st.attrs):len(st.attrs)],
		semconv.MessagingOperationName("handle"), semconv.MessagingOperationTypeProcess)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.subs[st] = struct{}{}
	if t.reg == nil {
		if reg, err := t.meter.RegisterCallback(t.observe, t.lag, t.lagAge, t.horizonAge, t.connected); err == nil {
			t.reg = reg
		}
	}
	return st
}

// untrack ends what track started.
func (st *subTelemetry) untrack() {
	if st == nil {
		return
	}
	t := st.t
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.subs, st)
	if len(t.subs) == 0 && t.reg != nil {
		_ = t.reg.Unregister()
		t.reg = nil
	}
}

// setOwning records whether the worker holds the subscription's lease:
// only an owner reports its lag.
func (st *subTelemetry) setOwning(v bool) {
	if st != nil {
		st.owning.Store(v)
	}
}

// observe reads the gauges: the listener, the horizon's age and the lag of
// the subscriptions this store's workers own.
func (t *telemetry) observe(ctx context.Context, o metric.Observer) error {
	t.mu.Lock()
	owned := map[string]*subTelemetry{} // by row
	for st := range t.subs {
		if st.owning.Load() {
			owned[st.row] = st
		}
	}
	t.mu.Unlock()
	connected := int64(0)
	if t.listening != nil && t.listening() {
		connected = 1
	}
	o.ObserveInt64(t.connected, connected)
	if t.oldestHolder != nil {
		if age, err := t.oldestHolder(ctx); err == nil {
			o.ObserveFloat64(t.horizonAge, age.Seconds())
		}
	}
	if len(owned) == 0 || t.listSubscriptions == nil {
		return nil
	}
	rows, err := t.listSubscriptions(ctx)
	if err != nil {
		return err
	}
	type lag struct {
		events int64
		age    time.Duration
		set    attribute.Set
	}
	lags := map[string]*lag{}
	now := time.Now()
	for _, r := range rows {
		st := owned[r.Name]
		if st == nil {
			continue
		}
		l := lags[st.name]
		if l == nil {
			l = &lag{set: st.attrSet}
			lags[st.name] = l
		}
		l.events += r.Lag
		if !r.OldestUnhandled.IsZero() {
			l.age = max(l.age, now.Sub(r.OldestUnhandled))
		}
	}
	for _, l := range lags {
		o.ObserveInt64(t.lag, l.events, metric.WithAttributeSet(l.set))
		o.ObserveFloat64(t.lagAge, l.age.Seconds(), metric.WithAttributeSet(l.set))
	}
	return nil
}

// startHandler starts timing a handler call on evs, and its span (linked
// to the appends' spans) when tracing is on.
func (st *subTelemetry) startHandler(ctx context.Context, evs []*RecordedEvent, attempt int) (context.Context, appendSpan) {
	if st == nil {
		return ctx, appendSpan{}
	}
	var h appendSpan
	if st.t.handlerDuration.Enabled(ctx) {
		h.start = time.Now()
	}
	if st.t.tracing() {
		ctx, h.span = st.t.tracer.Start(ctx, "process "+st.name, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(st.processAttrs...))
		if h.span.IsRecording() {
			h.span.SetAttributes(
				semconv.MessagingBatchMessageCount(len(evs)),
				keyEventCount.Int(len(evs)),
				keyPositionFirst.String(evs[0].Position.String()),
				keyPositionLast.String(evs[len(evs)-1].Position.String()),
				keyAttempt.Int(max(attempt, 1)),
			)
			addLinks(h.span, evs)
		}
	}
	return ctx, h
}

// addLinks links a recording span to the spans that appended evs. (Added
// after the start, so that an unsampled span reads no metadata.)
func addLinks(span trace.Span, evs []*RecordedEvent) {
	if !span.IsRecording() {
		return
	}
	for _, l := range links(evs) {
		span.AddLink(l)
	}
}

// endHandler records a handler call's outcome.
func (st *subTelemetry) endHandler(ctx context.Context, h appendSpan, herr error) {
	if st == nil {
		return
	}
	if !h.start.IsZero() {
		opts := st.okOpts
		if herr != nil {
			opts = st.errorOpts
		}
		st.t.handlerDuration.Record(ctx, time.Since(h.start).Seconds(), opts...)
	}
	endOutcome(h.span, herr)
}

// endOutcome ends a span with an outcome, ok or error.
func endOutcome(span trace.Span, err error) {
	if !recording(span) {
		if span != nil {
			span.End()
		}
		return
	}
	if err != nil {
		span.SetAttributes(keyOutcome.String(outcomeError), semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(keyOutcome.String(outcomeOK))
	}
	span.End()
}

// handledN counts events committed with the checkpoint.
func (st *subTelemetry) handledN(ctx context.Context, n int) {
	if st != nil && n > 0 {
		st.t.handled.Add(ctx, int64(n), st.countOpts...)
	}
}

// parkedN counts parked events.
func (st *subTelemetry) parkedN(ctx context.Context, n int) {
	if st != nil && n > 0 {
		st.t.parked.Add(ctx, int64(n), st.countOpts...)
	}
}

// retried counts an attempt after a failure.
func (st *subTelemetry) retried(ctx context.Context) {
	if st != nil {
		st.t.retries.Add(ctx, 1, st.countOpts...)
	}
}

// startRead starts the span of a subscription's page read.
func (st *subTelemetry) startRead(ctx context.Context, after Position) (context.Context, trace.Span) {
	if st == nil || !st.t.tracing() {
		return ctx, nil
	}
	ctx, span := st.t.startRead(ctx, "read_all", st.attrs)
	if span.IsRecording() {
		span.SetAttributes(keyPosition.String(after.String()))
	}
	return ctx, span
}

// startEventSpan starts the span of a park or a replay of one event,
// linked to its append's span, when tracing is on.
func (st *subTelemetry) startEventSpan(ctx context.Context, op string, ev *RecordedEvent, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if st == nil || !st.t.tracing() {
		return ctx, nil
	}
	ctx, span := st.t.tracer.Start(ctx, op+" "+st.name, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(st.attrs...))
	if span.IsRecording() {
		span.SetAttributes(keyPosition.String(ev.Position.String()), keyStreamID.String(ev.StreamID.ID))
		span.SetAttributes(attrs...)
		addLinks(span, []*RecordedEvent{ev})
	}
	return ctx, span
}
