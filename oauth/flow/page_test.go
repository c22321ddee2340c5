package flow_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/memconnect/memconnect/oauth/flow"
)

// Without words or a page of the host's, a flow says its reasons plainly
// and the loopback listener answers in plain text.
func TestPlainWordsAndPage(t *testing.T) {
	if got := flow.PlainWords(flow.ReasonWaitingBrowser); got != "Waiting browser" {
		t.Errorf("PlainWords = %q", got)
	}
	e := newFlowEnv(t, nil, func(c *flow.Config) { c.Words = nil })
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	if f.Detail != "Waiting browser" {
		t.Errorf("Detail = %q, want the plain words", f.Detail)
	}
	e.m.Cancel(context.Background(), flowKeyDefault)
	rec := httptest.NewRecorder()
	flow.PlainPage(rec, flow.Flow{State: flow.StateConnected}, nil, "Honcho")
	if rec.Code != 200 || rec.Body.String() != "Connected to Honcho. You can close this window and return to the app.\n" ||
		rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("PlainPage = %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}
