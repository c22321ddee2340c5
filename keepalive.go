package memconnect

import (
	"context"
	"sync"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/keeper"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/observe"
)

// flowObserver tells o of the flows the bus reports: started when a flow
// is first seen pending, finished when it leaves that state (connected,
// error, or cancelled when it goes back to idle).
func flowObserver(o observe.Observer) func(events.Event) {
	var mu sync.Mutex
	pending := map[connid.ID]string{} // flow id
	return func(ev events.Event) {
		if ev.Kind != events.KindFlow || ev.Flow == nil {
			return
		}
		f := ev.Flow
		mu.Lock()
		id, was := pending[ev.Key]
		var started, finished bool
		switch {
		case f.State == flow.StatePending && (!was || id != f.ID):
			pending[ev.Key] = f.ID
			started = true
		case f.State != flow.StatePending && was:
			delete(pending, ev.Key)
			finished = true
		}
		mu.Unlock()
		if started {
			o.FlowStarted(ev.Key.Provider, string(f.Method))
		}
		if finished {
			outcome := string(f.State)
			if f.State == flow.StateIdle {
				outcome = "cancelled"
			}
			o.FlowFinished(ev.Key.Provider, outcome)
		}
	}
}

// startKeeper runs the keeper of cfg.KeepFresh until the returned stop is
// called; stop waits for the round under way.
func startKeeper(r *Router, cfg Config) (stop func(), err error) {
	kc := keeper.Config{Connector: r.conn, Interval: cfg.KeepFresh, Logger: cfg.Logger, Observer: cfg.Observer, Clock: cfg.Clock}
	k, err := keeper.New(kc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = k.Run(ctx) // ends with ctx
	}()
	return func() { cancel(); <-done }, nil
}
