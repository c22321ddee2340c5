package flow

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/outbound"
	"github.com/memconnect/memconnect/internal/tokenresp"
	"github.com/memconnect/memconnect/internal/wire"
)

// MaxUserCodeLen is the longest device-flow user code accepted (RFC 8628
// section 6.1 suggests about 8 characters); a longer one, or one that is
// not printable text, fails the device flow's start.
const MaxUserCodeLen = 32

// maxURLLen bounds a verification URI from the server.
const maxURLLen = 2048

// startDevice runs the device authorization request of f (RFC 8628
// section 3.1) with [oauth2.Config.DeviceAuth] and, once the server
// answered, polls the token endpoint in a goroutine owned by the manager.
// f is registered and pending; concurrent Starts wait for f.ready.
func (m *Manager) startDevice(ctx context.Context, f *flowRecord, opts []oauth2.AuthCodeOption) (Flow, error) {
	actx, stop := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, outbound.Secret(m.client)), outbound.StepTimeout)
	defer stop()
	defer context.AfterFunc(f.ctx, stop)() // Cancel and Close abort the request
	da, err := f.cfg.DeviceAuth(actx, opts...)

	m.mu.Lock()
	defer m.mu.Unlock()
	defer close(f.ready)
	if f.state != StatePending { // cancelled or closed meanwhile
		return f.snapshotLocked(), f.err
	}
	switch {
	case err != nil:
	case da.DeviceCode == "" || da.UserCode == "" || !webURL(da.VerificationURI):
		err = errors.New("flow: incomplete device authorization response")
	case !wire.Short(da.UserCode, MaxUserCodeLen):
		// A person types it: a code with control or bidirectional
		// characters, or a long one, is not a code but an attempt to
		// act on the terminal or page that shows it.
		err = fmt.Errorf("flow: the device authorization response's user_code is not short printable text (at most %d characters)", MaxUserCodeLen)
	case !wire.Short(da.VerificationURI, maxURLLen) || (da.VerificationURIComplete != "" && !wire.Short(da.VerificationURIComplete, maxURLLen)):
		err = errors.New("flow: the device authorization response's verification URI holds characters that are not printable")
	}
	if err != nil {
		fe := m.tokenError(CodeStart, ReasonDeviceStart, err)
		m.endLocked(context.WithoutCancel(ctx), f, StateError, fe.Detail, fe)
		return f.snapshotLocked(), fe
	}
	f.userCode = da.UserCode
	f.verificationURI = da.VerificationURI
	f.authorizeURL = da.VerificationURI
	if webURL(da.VerificationURIComplete) {
		f.authorizeURL = da.VerificationURIComplete
	}
	if !da.Expiry.IsZero() {
		// The library stamps Expiry with time.Now; report it on our clock.
		f.expiresAt = m.clock.Now().Add(time.Until(da.Expiry)).Truncate(time.Second)
	}
	f.detail = m.say(ReasonWaitingDevice)
	// Recorded so that every instance sharing the store reports and can
	// cancel it; the secret is this instance's claim on the completion.
	f.claim = newStateParam()
	p := Pending{Key: f.key, ID: f.id, State: f.claim, ExpiresAt: f.expiresAt, Config: f.cfg, Flow: f.snapshotLocked()}
	if err := m.store.Put(m.ctx, p); err != nil {
		m.log.Warn().Str("flow_id", f.id).Err(err).Msg("flow: the pending-flow store could not record a device flow")
	}
	m.wg.Add(1)
	go m.pollDevice(f, da)
	m.logFlow(f).Msg("flow: flow started")
	m.changedLocked(f)
	return f.snapshotLocked(), nil
}

// pollDevice polls for f's token with [oauth2.Config.DeviceAccessToken],
// which keeps the interval and honours slow_down (RFC 8628 section 3.5), and
// completes or fails f. Cancel and Close stop it through f.ctx.
func (m *Manager) pollDevice(f *flowRecord, da *oauth2.DeviceAuthResponse) {
	defer m.wg.Done()
	capture := &tokenresp.Capture{}
	tok, err := f.cfg.DeviceAccessToken(context.WithValue(f.ctx, oauth2.HTTPClient, capture.Client(m.client)), da, f.tokenOpts...)
	tok, err = m.kept(f.id, capture, tok, err)
	if err != nil {
		if f.ctx.Err() != nil {
			return // cancelled or closed: the flow has ended already
		}
		f.clientRejected(err)
		_, _ = m.fail(m.own(), f, m.deviceError(err))
		return
	}
	m.mu.Lock()
	if f.state != StatePending {
		m.mu.Unlock()
		return
	}
	f.completing = true
	m.mu.Unlock()
	// A flow another instance cancelled is not completed here.
	if _, err := m.store.Claim(f.ctx, f.key, f.claim); errors.Is(err, ErrInvalidState) {
		m.mu.Lock()
		f.completing = false
		f.endedElsewhere = true
		m.endLocked(m.own(), f, StateIdle, m.say(ReasonCancelled), ErrCancelled)
		m.mu.Unlock()
		return
	}
	_, _ = m.install(m.own(), f, tok)
}

// deviceError classifies how device polling failed (RFC 8628 section 3.5).
func (m *Manager) deviceError(err error) *Failure {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "access_denied":
			return &Failure{Code: CodeAccessDenied, Detail: m.say(ReasonDenied), Err: err}
		case "expired_token":
			return &Failure{Code: CodeExpired, Detail: m.say(ReasonDeviceExpired), Err: err}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) { // the device code's lifetime ran out
		return &Failure{Code: CodeExpired, Detail: m.say(ReasonDeviceExpired), Err: err}
	}
	return m.tokenError(CodeDevice, ReasonDeviceFailed, err)
}

// webURL reports whether s is an absolute http or https URL, the only kind
// of verification URI a person is sent to.
func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
