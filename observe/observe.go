// Package observe is how memconnect tells a host what it does, for
// metrics: refreshes, lock and lease waits, sign-in flows, API-key checks,
// event streams, keeper runs and webhook deliveries. The router and its
// parts call an [Observer] the host gives them (memconnect.Config.Observer);
// this module imports no metrics library, and examples/server shows one
// wired to Prometheus.
//
// Every method must return quickly and must not block: they are called on
// request paths and under no lock of the caller's. An Observer is called
// from many goroutines at once. Nothing passed to it is a secret.
package observe

import "time"

// Observer receives what memconnect does. Embed [Nop] in a type of your
// own to implement only the methods you need: methods added to Observer
// later then do nothing for you.
type Observer interface {
	// Refresh is one refresh of a grant under the locks.
	Refresh(Refresh)
	// FlowStarted is a sign-in flow that started; method is "browser" or
	// "device".
	FlowStarted(provider, method string)
	// FlowFinished is a sign-in flow that ended; outcome is the flow's
	// final state: "connected", "error", "cancelled" or "expired".
	FlowFinished(provider, outcome string)
	// APIKeyChecked is an API key checked with the provider's server;
	// outcome is "ok", "rejected" or "error" (the server could not say).
	APIKeyChecked(provider, outcome string)
	// Streams is the number of event streams open on this instance, each
	// time it changes.
	Streams(open int)
	// KeeperRun is one round of the background keeper.
	KeeperRun(KeeperRun)
	// Webhook is one delivery attempt of a webhook, or an event dropped
	// because the queue was full (outcome "dropped").
	Webhook(outcome string)
}

// Refresh is one refresh of a grant, as [Observer.Refresh] receives it.
type Refresh struct {
	Provider string
	// Outcome is "ok", "adopted", "transient_failure" or "rejected".
	Outcome string
	// Took is the exchange with the token endpoint; zero when none was
	// made (adopted).
	Took time.Duration
	// LockWait is the wait for the in-process lock and the store's lock
	// (file lock or PostgreSQL lease).
	LockWait time.Duration
	// Background reports a refresh the keeper made, not a caller.
	Background bool
}

// KeeperRun is one round of the keeper, as [Observer.KeeperRun] receives
// it.
type KeeperRun struct {
	// Checked is how many grants the round looked at; Refreshed, Adopted
	// and Failed how many it refreshed, found refreshed by another holder,
	// and failed to refresh (a rejection included).
	Checked, Refreshed, Adopted, Failed int
	Took                                time.Duration
}

// Nop is an [Observer] that does nothing, to embed.
type Nop struct{}

// Refresh does nothing.
func (Nop) Refresh(Refresh) {}

// FlowStarted does nothing.
func (Nop) FlowStarted(string, string) {}

// FlowFinished does nothing.
func (Nop) FlowFinished(string, string) {}

// APIKeyChecked does nothing.
func (Nop) APIKeyChecked(string, string) {}

// Streams does nothing.
func (Nop) Streams(int) {}

// KeeperRun does nothing.
func (Nop) KeeperRun(KeeperRun) {}

// Webhook does nothing.
func (Nop) Webhook(string) {}

var _ Observer = Nop{}

// Or returns o, or [Nop] when o is nil.
func Or(o Observer) Observer {
	if o == nil {
		return Nop{}
	}
	return o
}
