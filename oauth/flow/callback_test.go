package flow_test

import (
	"context"
	"testing"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth/flow"
)

// A callback's request context gives the flow's store calls, exchange and
// Complete its values, not its end: a browser that leaves as it sends the
// callback does not abandon the claimed state or the spent code.
func TestCallbackKeepsRequestValuesNotItsEnd(t *testing.T) {
	t.Parallel()
	type requestKey struct{}
	e := newFlowEnv(t, nil, nil)
	req := e.request(flowKeyDefault, flow.RedirectCallback)
	var seen any
	var ended error
	req.Complete = func(ctx context.Context, tok *oauth2.Token) error {
		seen, ended = ctx.Value(requestKey{}), ctx.Err()
		return e.done.Complete(ctx, tok)
	}
	f := e.start(req)
	back := e.consent(f, true)
	gone, leave := context.WithCancel(context.WithValue(context.Background(), requestKey{}, "r1"))
	leave()
	got, err := e.m.Callback(gone, flowKeyDefault, back.Query())
	if err != nil || got.State != flow.StateConnected {
		t.Fatalf("Callback = %s, %v; want connected", got.State, err)
	}
	if seen != "r1" || ended != nil {
		t.Errorf("Complete's context: value %v, err %v; want the request's value and no end", seen, ended)
	}
}
