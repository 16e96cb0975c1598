package meowmx

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// downDriver is a driver whose database is down: every SubscriptionEnsure
// fails (the lease is granted), and the other calls are not expected.
type downDriver struct {
	ex *downExecutor
}

type downExecutor struct {
	meowmxdriver.Executor // nil: any other call panics
	ensures               atomic.Int64
	// fail is called on each SubscriptionEnsure, with how many there were.
	fail func(n int64)
}

func (e *downExecutor) SubscriptionEnsure(context.Context, *meowmxdriver.SubscriptionEnsureParams) (*SubscriptionInfo, error) {
	e.fail(e.ensures.Add(1))
	return nil, errors.New("database down")
}

// SubscriptionLease grants the lease: the database is down for the owner's
// first statement.
func (e *downExecutor) SubscriptionLease(context.Context, *meowmxdriver.SubscriptionLeaseParams) (*meowmxdriver.SubscriptionLeaseResult, error) {
	return &meowmxdriver.SubscriptionLeaseResult{Held: true}, nil
}

func (e *downExecutor) SubscriptionRelease(context.Context, *meowmxdriver.SubscriptionReleaseParams) error {
	return nil
}

func (d *downDriver) Executor() meowmxdriver.Executor               { return d.ex }
func (d *downDriver) UnwrapExecutor(struct{}) meowmxdriver.Executor { return d.ex }
func (d *downDriver) UnwrapTx(meowmxdriver.ExecutorTx) struct{}     { return struct{}{} }
func (d *downDriver) Name() string                                  { return "down" }
func (d *downDriver) Capabilities() meowmxdriver.Capabilities       { return meowmxdriver.Capabilities{} }
func (d *downDriver) Begin(context.Context) (meowmxdriver.ExecutorTx, error) {
	return nil, errors.New("database down")
}
func (d *downDriver) Migrate(context.Context, *meowmxdriver.MigrateParams) (*meowmxdriver.MigrateResult, error) {
	return nil, errors.New("database down")
}

// retryLog collects the waits a worker logs before it tries to own its
// subscription again.
type retryLog struct {
	mu    sync.Mutex
	waits []time.Duration
	warns int // of them logged as warnings
}

func (l *retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *retryLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *retryLog) WithGroup(string) slog.Handler            { return l }
func (l *retryLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" && r.Message == "meowmx: subscription worker lost ownership or failed; retrying" {
			l.mu.Lock()
			l.waits = append(l.waits, a.Value.Duration())
			if r.Level >= slog.LevelWarn {
				l.warns++
			}
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

// TestOwnBackoffHonoursMaxPollInterval: a worker whose every ownership
// fails at once waits LockInterval, doubling up to the configured
// MaxPollInterval, between its attempts.
func TestOwnBackoffHonoursMaxPollInterval(t *testing.T) {
	const attempts = 10
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex := &downExecutor{fail: func(n int64) {
		if n == attempts {
			cancel()
		}
	}}
	log := &retryLog{}
	s, err := NewStore[struct{}](&downDriver{ex: ex}, &Config{Logger: slog.New(log)})
	require.NoError(t, err)
	err = s.RunSubscription(ctx, &SubscriptionConfig[struct{}]{Name: "down",
		Handler:      HandlerFunc[struct{}](func(context.Context, struct{}, *RecordedEvent) error { return nil }),
		LockInterval: time.Millisecond, PollInterval: time.Millisecond, MaxPollInterval: 4 * time.Millisecond})
	require.NoError(t, err, "a cancelled subscription returns nil")
	require.ErrorIs(t, ctx.Err(), context.Canceled, "cancelled by the last attempt, not timed out")

	log.mu.Lock()
	defer log.mu.Unlock()
	require.Len(t, log.waits, attempts-1)
	for i, d := range log.waits {
		require.LessOrEqual(t, d, 4*time.Millisecond, "wait %d, of %v", i, log.waits)
	}
	require.Equal(t, time.Millisecond, log.waits[0], "the first wait is LockInterval")
	require.Contains(t, log.waits, 4*time.Millisecond, "the waits double up to MaxPollInterval")
	require.Equal(t, 1, log.warns, "an outage is one warning; the retries after it log at debug level")
}

func TestOwnBackoff(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name                 string
		lock, maxPoll, owned time.Duration
		want                 []time.Duration
	}{
		{name: "doubles up to MaxPollInterval", lock: 10 * ms, maxPoll: 50 * ms, want: []time.Duration{10 * ms, 20 * ms, 40 * ms, 50 * ms, 50 * ms}},
		{name: "never below LockInterval", lock: 80 * ms, maxPoll: 50 * ms, want: []time.Duration{80 * ms, 80 * ms, 80 * ms}},
		{name: "starts over after a long ownership", lock: 10 * ms, maxPoll: 50 * ms, owned: time.Second,
			want: []time.Duration{10 * ms, 10 * ms, 10 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newOwnBackoff(tc.lock, tc.maxPoll)
			var got []time.Duration
			for range tc.want {
				got = append(got, b.after(tc.owned))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// stallLog collects the stall warnings a worker logs.
type stallLog struct {
	retryLog
	stalls int
}

func (l *stallLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "meowmx: the subscription's owner has made no progress; it holds its lease but handles nothing" {
		l.mu.Lock()
		l.stalls++
		l.mu.Unlock()
	}
	return nil
}

// TestWarnStalled: a standby warns, at most once per StalledAfter, of an
// owner that holds the lease without progress for longer than
// StalledAfter; not of one that made progress lately.
func TestWarnStalled(t *testing.T) {
	log := &stallLog{}
	w := &worker[struct{}]{lease: &lease{}, log: slog.New(log)}
	ctx := context.Background()
	w.lease.sinceProgress = StalledAfter / 2
	w.warnStalled(ctx)
	require.Zero(t, log.stalls, "progress within StalledAfter")
	w.lease.sinceProgress = 2 * StalledAfter
	w.warnStalled(ctx)
	w.warnStalled(ctx)
	require.Equal(t, 1, log.stalls, "once per StalledAfter")
	w.stallWarned = time.Now().Add(-2 * StalledAfter)
	w.warnStalled(ctx)
	require.Equal(t, 2, log.stalls, "again after StalledAfter")
	w.lease.sinceProgress = -1 // never made progress: a new owner
	w.stallWarned = time.Time{}
	w.warnStalled(ctx)
	require.Equal(t, 2, log.stalls)
}
