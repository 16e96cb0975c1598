package meowmx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// PartitionOf returns the partition, from 0 to partitions-1, of the
// stream with this aggregate id in a consumer group of that many
// partitions (see SubscriptionConfig.Partitions): the first four bytes of
// the MD5 digest of the id, big-endian, modulo partitions, which any
// language can compute.
func PartitionOf(aggregateID string, partitions int) int {
	return meowmxtype.PartitionOf(aggregateID, partitions)
}

// PartitionName returns the name of a consumer group's partition
// ("orders#3"). A partition is a subscription of that name to the
// methods that take one (ParkedEvents, ReplayParked, ResetSubscription,
// WaitForSubscription), which also take the group's name for all of its
// partitions.
func PartitionName(group string, partition int) string {
	return meowmxtype.PartitionName(group, partition)
}

// member is one worker of a consumer group, for RunSubscription. Every
// LockInterval it records itself among the group's members
// (SubscriptionJoin: the record lapses LeaseTimeout later) and reads the
// others. The members, in the order of their ids, share the partitions
// round robin: member r of W owns the partitions p with p % W == r, which
// gives each ⌊N/W⌋ or ⌈N/W⌉ of the N partitions. A member runs a worker
// for each partition it owns; the worker takes the partition's lease as
// soon as the member that had it hands it over, or its lease lapses. It
// drains the workers of the partitions that belong to another member now:
// they stop once the work in hand is committed, and release their lease.
//
// The leases, not this assignment, keep ownership exclusive: two members
// whose views of the group differ for a moment both run a worker for a
// partition, and one of them stands by until the views agree again. No
// process coordinates: the members agree because they read the same rows.
type member[TTx any] struct {
	s     *Store[TTx]
	c     *SubscriptionConfig[TTx]
	ex    meowmxdriver.Executor
	log   *slog.Logger
	owner SubscriptionOwner

	running map[int]*partitionRun
	ended   chan partitionEnd
	owned   []int // the partitions this member owned at the last rebalance
	failing bool  // an outage is being retried
}

// partitionRun is a partition's worker, running.
type partitionRun struct {
	drain    chan struct{}
	draining bool
}

// partitionEnd is what a partition's worker returned.
type partitionEnd struct {
	partition int
	err       error
}

func (s *Store[TTx]) runMember(ctx context.Context, c *SubscriptionConfig[TTx]) error {
	m := &member[TTx]{s: s, c: c, ex: s.driver.Executor(), log: s.config.Logger.With("subscription", c.Name),
		owner: newOwner(), running: map[int]*partitionRun{}, ended: make(chan partitionEnd)}
	return m.run(ctx)
}

// run creates the group when it is new, then rebalances every
// LockInterval, and whenever a partition's worker ends, until ctx ends or
// a partition's worker stops with an error, which ends every partition.
func (m *member[TTx]) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer m.leave(ctx)
	defer cancel()
	if err := m.ensure(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	m.log.InfoContext(ctx, "meowmx: consumer group: joining", "partitions", m.c.Partitions, "member", m.owner.String())
	if ix := m.s.caps.PartitionIndexer; ix != nil {
		done := make(chan struct{})
		defer func() { cancel(); <-done }()
		go func() { defer close(done); m.index(ctx, ix) }()
	}
	tick := time.NewTicker(m.c.LockInterval)
	defer tick.Stop()
	for {
		if err := m.rebalance(ctx); err != nil {
			m.log.ErrorContext(ctx, "meowmx: consumer group: stopped", "err", err)
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case end := <-m.ended:
			delete(m.running, end.partition)
			if end.err != nil {
				m.log.ErrorContext(ctx, "meowmx: consumer group: a partition stopped; stopping the others",
					"partition", end.partition, "err", end.err)
				return end.err
			}
		case <-tick.C:
		}
	}
}

// index makes the driver build the index of groups of this size (see
// meowmxdriver.PartitionIndexer). Without it the group reads as before,
// more slowly: a failure is logged once, as a warning.
func (m *member[TTx]) index(ctx context.Context, ix meowmxdriver.PartitionIndexer) {
	start := time.Now()
	switch err := ix.PartitionIndex(ctx, m.c.Partitions); {
	case ctx.Err() != nil:
	case err != nil:
		m.log.WarnContext(ctx, "meowmx: consumer group: cannot index the partitions; reading without the index", "err", err)
	case time.Since(start) > time.Second:
		m.log.InfoContext(ctx, "meowmx: consumer group: partitions indexed", "took", time.Since(start))
	}
}

// ensure creates the group and its partitions, or checks that the group
// has the configured partitions, retrying database errors.
func (m *member[TTx]) ensure(ctx context.Context) error {
	for {
		_, err := ensureSubscription(ctx, m.ex, m.c)
		var stop *stopError
		switch {
		case err == nil, ctx.Err() != nil:
			return nil
		case errors.As(err, &stop):
			return stop.err
		case errors.Is(err, ErrNotMigrated):
			return fmt.Errorf("meowmx: subscription %q: %w", m.c.Name, err)
		}
		m.failed(ctx, "meowmx: consumer group: cannot create or read the group; retrying", err)
		if !sleep(ctx, m.c.LockInterval) {
			return nil
		}
	}
}

// rebalance records this member, reads the members, and starts and drains
// partition workers to match the member's share. It returns an error only
// when the group was deleted.
func (m *member[TTx]) rebalance(ctx context.Context) error {
	members, err := m.ex.SubscriptionJoin(ctx, &meowmxdriver.SubscriptionJoinParams{
		Name: m.c.Name, Owner: m.owner, TTL: m.c.LeaseTimeout})
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, meowmxdriver.ErrNotFound):
		return fmt.Errorf("%w: %q (deleted)", ErrSubscriptionNotFound, m.c.Name)
	case err != nil:
		m.failed(ctx, "meowmx: consumer group: cannot record this member; retrying", err)
		return nil
	}
	if m.failing {
		m.failing = false
		m.log.InfoContext(ctx, "meowmx: consumer group: working again")
	}
	ids := make([]string, 0, len(members)+1)
	for _, w := range members {
		ids = append(ids, w.ID)
	}
	if !slices.Contains(ids, m.owner.ID) {
		ids = append(ids, m.owner.ID)
	}
	slices.Sort(ids)
	rank, of := slices.Index(ids, m.owner.ID), len(ids)
	var owned []int
	for p := range m.c.Partitions {
		mine := p%of == rank
		r, running := m.running[p]
		switch {
		case mine && !running:
			m.start(ctx, p)
		case !mine && running && !r.draining:
			close(r.drain)
			r.draining = true
		}
		if mine {
			owned = append(owned, p)
		}
	}
	if !slices.Equal(owned, m.owned) {
		m.owned = owned
		m.log.InfoContext(ctx, "meowmx: consumer group: this member's partitions", "partitions", owned, "members", of)
	}
	return nil
}

// start runs the worker of partition p. A partition being drained is
// started again once its worker has ended.
func (m *member[TTx]) start(ctx context.Context, p int) {
	c := *m.c
	c.Name = PartitionName(m.c.Name, p)
	r := &partitionRun{drain: make(chan struct{})}
	m.running[p] = r
	w := &worker[TTx]{s: m.s, c: &c, ex: m.ex, lease: newLease(m.ex, c.Name, m.owner, c.LeaseTimeout),
		log: m.log.With("partition", p), partition: p, partitions: c.Partitions, drain: r.drain, quiet: true,
		ensured: true}
	go func() { m.ended <- partitionEnd{partition: p, err: w.run(ctx)} }()
}

// leave waits for the partitions' workers to end (ctx is cancelled) and
// removes the member from the group, so that the others take its
// partitions at once.
func (m *member[TTx]) leave(ctx context.Context) {
	for len(m.running) > 0 {
		end := <-m.ended
		delete(m.running, end.partition)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = m.ex.SubscriptionRelease(ctx, &meowmxdriver.SubscriptionReleaseParams{Name: m.c.Name, Owner: m.owner.ID})
}

// failed logs an outage: as a warning the first time, then at debug level.
func (m *member[TTx]) failed(ctx context.Context, msg string, err error) {
	level := slog.LevelDebug
	if !m.failing {
		m.failing, level = true, slog.LevelWarn
	}
	m.log.Log(ctx, level, msg, "err", err, "retry_in", m.c.LockInterval)
}
