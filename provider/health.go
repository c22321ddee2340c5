package provider

import (
	"errors"
	"time"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/observe"
)

// Health of a connection, the values of [StatusReport.Health].
const (
	// HealthOK: connected, and the grant renews itself.
	HealthOK = "ok"
	// HealthExpiring: the access token is at or near its end and not
	// renewed yet (the next use, or the keeper, renews it); for a grant
	// without refresh token, its last hour, after which a sign-in is
	// needed.
	HealthExpiring = "expiring"
	// HealthFailing: the last refresh failed for a reason that may pass
	// (the server down); the current token is kept and the refresh is
	// retried.
	HealthFailing = "failing"
	// HealthReauthRequired: the grant is dead; a person must connect
	// again.
	HealthReauthRequired = "reauth_required"
)

// expiringWithin is how close to its end a grant without refresh token is
// reported as expiring.
const expiringWithin = time.Hour

// ErrorReport is a failed refresh as the status report shows it: when, and
// a safe description (no token, no server body).
type ErrorReport struct {
	At time.Time
	// Since is when the refreshes started failing.
	Since   time.Time
	Message string
}

// onRefresh is the OnRefresh callback of the Connector's token sources of
// key: the observer hears of every refresh, and the bus of those that
// change the connection.
func (c *Connector) onRefresh(key connid.ID, background bool) func(oauth.RefreshReport) {
	return func(r oauth.RefreshReport) {
		if c.Observer != nil {
			c.Observer.Refresh(observe.Refresh{Provider: key.Provider, Outcome: string(r.Outcome),
				Took: r.Took, LockWait: r.LockWait, Background: background})
		}
		switch {
		case r.Recovered:
			c.publish(key, events.Recovered)
		case r.Outcome == oauth.OutcomeRefreshed:
			c.publish(key, events.Refreshed)
		case r.Outcome == oauth.OutcomeFailed:
			c.publish(key, events.RefreshFailed)
		case r.Outcome == oauth.OutcomeRejected:
			c.publish(key, events.ReauthRequired)
		}
	}
}

// used records that a token source of key was made, so that the keeper
// knows which grants this process uses.
func (c *Connector) used(key connid.ID) {
	c.sourcesMu.Lock()
	defer c.sourcesMu.Unlock()
	if c.sources == nil {
		c.sources = make(map[connid.ID]struct{})
	}
	c.sources[key] = struct{}{}
}

// health fills rep's health fields from st and the refreshes of this
// process.
func (c *Connector) health(t target, st Status, rep *StatusReport, now time.Time) {
	if !rep.Connected {
		return
	}
	if rep.ReauthRequired {
		rep.Health = HealthReauthRequired
		return
	}
	rep.Health = HealthOK
	tk := st.Token
	if rep.Auth != AuthOAuth || tk == nil {
		return
	}
	if !tk.Obtained.IsZero() {
		o := tk.Obtained
		rep.LastRefreshAt = &o
	}
	if ref, err := c.where(t, false); err == nil {
		h := ref.grants.Health(ref.key)
		if st.Shared != nil {
			h = st.Shared.Health // what every instance recorded
		}
		if rep.LastRefreshAt == nil && !h.LastRefresh.IsZero() {
			lr := h.LastRefresh
			rep.LastRefreshAt = &lr
		}
		if h.LastError != nil {
			rep.Health = HealthFailing
			rep.LastError = &ErrorReport{At: h.LastError.At, Since: h.FailingSince, Message: h.LastError.Message}
			return
		}
	}
	// The margin the refresh itself uses: half a short token's lifetime.
	left := tk.ExpiresAt.Sub(now)
	if tk.Refreshable && left <= oauth.SkewFor(tk.Obtained, tk.ExpiresAt) || !tk.Refreshable && left <= expiringWithin {
		rep.Health = HealthExpiring
	}
}

// observeKeyCheck tells the observer how an API-key check with provider's
// server went.
func (c *Connector) observeKeyCheck(provider string, err error) {
	if c.Observer == nil {
		return
	}
	outcome := "ok"
	switch {
	case errors.Is(err, ErrAPIKeyRejected):
		outcome = "rejected"
	case err != nil:
		outcome = "error"
	}
	c.Observer.APIKeyChecked(provider, outcome)
}
