package meowmx

import (
	"context"
	"fmt"
	"time"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// horizonWarnings remembers the warnings of warnHorizon.
type horizonWarnings struct {
	looked time.Time            // when the holders were last listed
	warned map[string]time.Time // when each holder was last logged, by pid and transaction id
}

// checkAhead stops the worker when its checkpoint is at or above the
// database's next transaction id (a restored dump: no event will ever come
// after it). h was read before the page; a second horizon, read after the
// worker's position, confirms it, for another worker may have moved the
// checkpoint (a reload) since h. It returns the latest horizon.
func (w *worker[TTx]) checkAhead(ctx context.Context, h *meowmxdriver.Horizon) (*meowmxdriver.Horizon, error) {
	if h.Xmax == 0 || w.pos.TransactionID < h.Xmax {
		return h, nil
	}
	h, err := w.ex.HorizonGet(ctx)
	if err != nil {
		return nil, err
	}
	if w.pos.TransactionID >= h.Xmax {
		return nil, &stopError{&CheckpointAheadError{Subscription: w.c.Name, Checkpoint: w.pos, NextTransactionID: h.Xmax}}
	}
	return h, nil
}

// warnHorizon logs the sessions that have held the commit horizon back for
// longer than HorizonWarnAfter, at most once per HorizonWarnAfter each. It
// lists them at most four times per HorizonWarnAfter.
func (w *worker[TTx]) warnHorizon(ctx context.Context) {
	after, hw := w.c.HorizonWarnAfter, &w.warnings
	if after < 0 || time.Since(hw.looked) < after/4 {
		return
	}
	hw.looked = time.Now()
	holders, err := w.ex.HorizonHolders(ctx, &meowmxdriver.HorizonHoldersParams{OlderThan: after, Limit: 5})
	if err != nil || len(holders) == 0 {
		return
	}
	if hw.warned == nil {
		hw.warned = map[string]time.Time{}
	}
	for _, h := range holders {
		key := fmt.Sprint(h.PID, h.TransactionID)
		if t, ok := hw.warned[key]; ok && time.Since(t) < after {
			continue
		}
		hw.warned[key] = time.Now()
		w.log.WarnContext(ctx, "meowmx: a transaction holds the commit horizon back: events committed after it started wait until it ends",
			"pid", h.PID, "state", h.State, "database", h.Database, "application", h.Application, "transaction_start", h.TransactionStart,
			"age", h.Age, "query", h.Query)
	}
}
