package handlers

import (
	"testing"

	"github.com/memconnect/memconnect/oauth/flow"
)

// Every reason of a flow has the router's words.
func TestFlowWordsComplete(t *testing.T) {
	for _, r := range []flow.Reason{flow.ReasonStarting, flow.ReasonWaitingBrowser, flow.ReasonWaitingDevice, flow.ReasonConnected,
		flow.ReasonCancelled, flow.ReasonStateExpired, flow.ReasonTimedOut, flow.ReasonClosed, flow.ReasonNoCode, flow.ReasonIssuer,
		flow.ReasonDenied, flow.ReasonRefused, flow.ReasonDeviceExpired, flow.ReasonRateLimited, flow.ReasonExchange,
		flow.ReasonUnreachable, flow.ReasonComplete, flow.ReasonDeviceStart, flow.ReasonDeviceFailed, flow.ReasonOtherBrowser} {
		if _, ok := flowWords[r]; !ok || FlowWords(r) == "" {
			t.Errorf("FlowWords(%s) = %q: no words of the router's", r, FlowWords(r))
		}
	}
}
