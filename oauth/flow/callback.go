package flow

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/internal/tokenresp"
)

// Callback completes key's browser flow with the query of a request to its
// redirect URI (RFC 6749 section 4.1.2); the host application's callback
// route calls it, the loopback listener runs the same code. It returns the
// flow afterwards and:
//
//   - nil when the grant was stored and the flow is [StateConnected];
//   - an error wrapping [ErrInvalidState] when the state is missing,
//     unknown, expired, already used or another key's: nothing changed;
//   - a [*Failure] when the flow ended in [StateError] (error= in the
//     query, a failed exchange, a failed Complete).
//
// A host shows a person the page for the result ([PlainPage] is the
// default one). ctx's values reach the store calls and the exchange, but
// not its end: the exchange belongs to the flow (Cancel and Close end it),
// so a browser that goes away does not abandon a spent code.
func (m *Manager) Callback(ctx context.Context, key connid.ID, q url.Values) (Flow, error) {
	return m.CallbackBound(ctx, key, q, "")
}

// CallbackBound is [Manager.Callback] for a request that presents nonce,
// the browser binding of the flow it completes ([Request.Binding]); "" for
// none. A flow bound to another nonce ends with [CodeOtherBrowser] and its
// code is not exchanged.
func (m *Manager) CallbackBound(ctx context.Context, key connid.ID, q url.Values, nonce string) (Flow, error) {
	return m.completeCallback(ctx, key, nil, q, nonce)
}

// boundTo reports whether nonce is the browser binding binding asks for
// (always, when binding is "").
func boundTo(binding, nonce string) bool {
	if binding == "" {
		return true
	}
	sum := sha256.Sum256([]byte(nonce))
	return nonce != "" && subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(binding)) == 1
}

// completeCallback is the one completion code of browser flows. owner is
// the flow whose loopback listener received the callback, or nil for
// [Manager.Callback].
func (m *Manager) completeCallback(ctx context.Context, key connid.ID, owner *flowRecord, q url.Values, nonce string) (Flow, error) {
	got := q.Get("state")
	m.mu.Lock()
	f := m.flows[key]
	if f == nil && owner == nil && m.resume != nil && !m.closed && got != "" && len(q["state"]) == 1 {
		m.mu.Unlock()
		return m.completeResumed(ctx, key, got, q, nonce)
	}
	if f == nil || (owner != nil && f != owner) || f.method != MethodBrowser ||
		f.state != StatePending || f.completing || got == "" || len(q["state"]) != 1 {
		snap := m.statusLocked(key)
		m.mu.Unlock()
		return snap, ErrInvalidState
	}
	m.mu.Unlock()

	// From here on the flow's life, not the request's, bounds the work.
	fctx, stop := detached(ctx, f.ctx)
	defer stop()
	// The state is single use: once claimed no other callback matches, on
	// this instance or any other sharing the store.
	p, err := m.store.Claim(fctx, key, got)
	m.mu.Lock()
	if err != nil || p.ID != f.id || f.state != StatePending || f.completing {
		snap := m.statusLocked(key)
		m.mu.Unlock()
		if err != nil && !errors.Is(err, ErrInvalidState) {
			m.log.Warn().Str("flow_id", f.id).Err(err).Msg("flow: the pending-flow store failed a claim")
		}
		return snap, ErrInvalidState
	}
	if !m.clock.Now().Before(p.ExpiresAt) {
		fe := &Failure{Code: CodeExpired, Detail: m.say(ReasonStateExpired)}
		m.endLocked(context.WithoutCancel(ctx), f, StateError, fe.Detail, fe)
		snap := f.snapshotLocked()
		m.mu.Unlock()
		return snap, fmt.Errorf("%w: expired", ErrInvalidState)
	}
	f.completing = true
	cfg := f.cfg
	m.mu.Unlock()

	tok, fe := m.exchange(answer{id: f.id, ctx: fctx, binding: f.binding, issuer: f.issuer, issuerRequired: f.issRequired,
		cfg: cfg, opts: append(slices.Clip(f.tokenOpts), oauth2.VerifierOption(p.Verifier))}, q, nonce)
	if fe != nil {
		f.clientRejected(fe.Err)
		return m.fail(ctx, f, fe)
	}
	return m.install(ctx, f, tok)
}

// answer is a claimed browser flow, as its callback is checked and its
// code exchanged.
type answer struct {
	id             string          // the flow's, for the log
	ctx            context.Context // whose end abandons the exchange
	binding        string          // [Request.Binding]'s digest; "" for none
	issuer         string
	issuerRequired bool
	cfg            oauth2.Config
	opts           []oauth2.AuthCodeOption // the token request's, the verifier included
	// ready, when not nil, runs once the checks passed and before the
	// code is spent; a Failure it returns ends the flow there.
	ready func(context.Context) *Failure
}

// exchange is what every callback goes through, whichever instance started
// its flow: the checks (the browser binding, the issuer, error=, a code),
// then the code exchange, keeping a successful answer x/oauth2 refuses. It
// returns the token, or the Failure that ends the flow.
func (m *Manager) exchange(a answer, q url.Values, nonce string) (*oauth2.Token, *Failure) {
	if !boundTo(a.binding, nonce) {
		return nil, &Failure{Code: CodeOtherBrowser, Detail: m.say(ReasonOtherBrowser)}
	}
	if fe := m.checkIssuer(q, a.issuer, a.issuerRequired); fe != nil {
		return nil, fe
	}
	if e := q.Get("error"); e != "" {
		return nil, m.authorizationError(e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" {
		return nil, &Failure{Code: CodeAuthorization, Detail: m.say(ReasonNoCode)}
	}
	ctx, cancel := context.WithTimeout(a.ctx, exchangeTimeout)
	defer cancel()
	if a.ready != nil {
		if fe := a.ready(ctx); fe != nil {
			return nil, fe
		}
	}
	capture := &tokenresp.Capture{}
	tok, err := a.cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, capture.Client(m.client)), code, a.opts...)
	tok, err = m.kept(a.id, capture, tok, err)
	if err != nil {
		return nil, m.tokenError(CodeExchange, ReasonExchange, err)
	}
	return tok, nil
}

// completeResumed completes a browser flow another instance started, from
// its record in the shared Store: the same steps as completeCallback, with
// no flow of this Manager to report them in. The result is returned, and
// logged; the starting instance reports its flow as it knows it. Its store
// calls, exchange and Complete run under ctx's values but last as long as
// the Manager: once the state is claimed, the flow is this call's to end,
// whether or not the browser waits for the answer.
func (m *Manager) completeResumed(ctx context.Context, key connid.ID, state string, q url.Values, nonce string) (Flow, error) {
	ctx, stop := detached(ctx, m.ctx)
	defer stop()
	p, err := m.store.Claim(ctx, key, state)
	if err != nil {
		if !errors.Is(err, ErrInvalidState) {
			m.log.Warn().Err(err).Msg("flow: the pending-flow store failed a claim")
		}
		return Flow{State: StateIdle}, ErrInvalidState
	}
	f := p.Flow
	f.State, f.AuthorizeURL = StateError, ""
	end := func(fe *Failure) (Flow, error) {
		f.Detail = fe.Detail
		if _, err := m.store.Finish(ctx, key, p.ID, f); err != nil {
			m.log.Warn().Str("flow_id", p.ID).Err(err).Msg("flow: the pending-flow store could not record the end of a flow")
		}
		ev := m.log.Info().Str("flow_id", p.ID).Str("profile", key.Profile).Str("provider", key.Provider).Str("state", string(f.State))
		if fe.Code != "" {
			ev = ev.Str("error", fe.Code)
		}
		ev.Msg("flow: flow of another instance ended here")
		if fe.Code == "" {
			return f, nil
		}
		return f, fe
	}
	if !m.clock.Now().Before(p.ExpiresAt) {
		fe := &Failure{Code: CodeExpired, Detail: m.say(ReasonStateExpired)}
		end(fe)
		return f, fmt.Errorf("%w: expired", ErrInvalidState)
	}
	// How to store the grant is asked before the code is spent: a code
	// exchanged with nowhere to keep its grant is lost.
	var comp Completion
	tok, fe := m.exchange(answer{id: p.ID, ctx: ctx, binding: p.Binding, issuer: p.Issuer, issuerRequired: p.IssuerRequired,
		cfg: p.Config, opts: append(tokenOptions(p.TokenParams), oauth2.VerifierOption(p.Verifier)),
		ready: func(ctx context.Context) *Failure {
			var err error
			if comp, err = m.resume(ctx, key, p.Config, p.ResumeData); err == nil && comp.Complete == nil {
				err = errors.New("flow: Resume gave no Complete")
			}
			if err != nil {
				return &Failure{Code: CodeComplete, Detail: m.say(ReasonComplete), Err: err}
			}
			return nil
		}}, q, nonce)
	if fe != nil {
		clientRejected(comp.ClientRejected, fe.Err)
		return end(fe)
	}
	cctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	if err := callComplete(cctx, comp.Complete, tok); err != nil {
		return end(m.completeFailure(err))
	}
	f.State = StateConnected
	return end(&Failure{Detail: m.say(ReasonConnected)})
}

// checkIssuer checks the authorization response's "iss" parameter (RFC
// 9207 section 2.4): when present it must be issuer, exactly (when issuer
// is known), and when required it must be present, once. A response that
// fails is an authorization server mix-up, and its code is not used.
func (m *Manager) checkIssuer(q url.Values, issuer string, required bool) *Failure {
	iss, present := q["iss"]
	switch {
	case !present && !required:
		return nil
	case !present, len(iss) != 1, issuer != "" && iss[0] != issuer:
		return &Failure{Code: CodeAuthorization, Detail: m.say(ReasonIssuer)}
	}
	return nil
}

// kept returns the token of a successful answer that capture saw, whatever
// x/oauth2 made of it: the code or device code is spent once the server
// answered 2xx, so an answer x/oauth2 refuses (an expires_in of "3600") is
// read leniently instead of lost. Without one it returns tok and err.
func (m *Manager) kept(flowID string, capture *tokenresp.Capture, tok *oauth2.Token, err error) (*oauth2.Token, error) {
	ans := capture.Last()
	if ans == nil {
		return tok, err
	}
	parsed, odd, perr := tokenresp.Parse(ans.Body, ans.ContentType, ans.Received)
	if perr != nil {
		if err == nil {
			err = perr
		}
		return tok, err
	}
	if odd != "" || err != nil {
		m.log.Warn().Str("flow_id", flowID).Str("odd", odd).Msg("flow: the token endpoint's answer is unusual; kept")
	}
	return parsed, nil
}

// install stores tok with the flow's Complete and then marks it connected,
// recording the end under ctx's values (the request's, if any). The
// caller has set f.completing.
func (m *Manager) install(ctx context.Context, f *flowRecord, tok *oauth2.Token) (Flow, error) {
	fctx, stop := detached(ctx, f.ctx)
	defer stop()
	cctx, cancel := context.WithTimeout(fctx, exchangeTimeout)
	defer cancel()
	if err := callComplete(cctx, f.complete, tok); err != nil {
		return m.fail(ctx, f, m.completeFailure(err))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.endLocked(context.WithoutCancel(ctx), f, StateConnected, m.say(ReasonConnected), nil) { // the flow's end, past the request
		return f.snapshotLocked(), f.err
	}
	return f.snapshotLocked(), nil
}

// completeFailure is the failure of a Complete that returned err: its own
// words when err has them for a person ([errkind.Classified]), else the
// general ones.
func (m *Manager) completeFailure(err error) *Failure {
	detail := m.say(ReasonComplete)
	if c, ok := errkind.Of(err); ok && c.Message() != "" {
		detail = strings.TrimSuffix(c.Message(), ".")
	}
	return &Failure{Code: CodeComplete, Detail: detail, Err: err}
}

// callComplete calls complete, turning a panic into an error so that the
// flow ends instead of staying half-completed (and the device poller does
// not take the process down). The panic value is not kept: it could hold
// the token.
func callComplete(ctx context.Context, complete func(context.Context, *oauth2.Token) error, tok *oauth2.Token) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("flow: Request.Complete panicked (%T)", r)
		}
	}()
	return complete(ctx, tok)
}
