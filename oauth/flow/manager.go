package flow

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/connid"

	"golang.org/x/oauth2"
)

// Manager runs authorization flows: browser flows with PKCE S256
// (RFC 6749 section 4.1, RFC 7636) redirected to a loopback listener
// (RFC 8252) or to the host application's callback route, and device flows
// (RFC 8628). It holds at most one pending flow per [Key].
//
// Every callback, whether it reached the loopback listener or
// [Manager.Callback], goes through the same completion code: the state
// parameter (256 random bits, single use, bound to its key, valid for
// [StateTTL]) is claimed from the [Store], which compares it in constant
// time; a callback without a valid state changes nothing; an error= callback
// ends the flow in [StateError]; otherwise the code is exchanged with the
// PKCE verifier, [Request.Complete] stores the grant, and only then does the
// flow become [StateConnected].
//
// Finished flows are reported for a while ([Config.ErrorReset],
// [Config.ConnectedReset]) and then the key reverts to [StateIdle].
//
// Manager is safe for concurrent use by multiple goroutines. Close it to
// stop its listeners and device pollers.
type Manager struct {
	clock           clock.Clock
	client          *http.Client
	log             zerolog.Logger
	store           Store
	loopbackAddr    string
	loopbackTimeout time.Duration
	errorReset      time.Duration
	connectedReset  time.Duration
	resume          func(context.Context, connid.ID, oauth2.Config, []byte) (Completion, error)
	onChange        func(connid.ID, Flow)
	page            PageFunc
	words           Words

	ctx  context.Context // the manager's lifetime, ended by Close; parent of every flow's
	stop context.CancelFunc
	wg   sync.WaitGroup // loopback servers and device pollers

	mu     sync.Mutex // guards flows, closed and every flowRecord's mutable fields
	flows  map[connid.ID]*flowRecord
	closed bool
}

// flowRecord is one flow. A key's record is in Manager.flows while the
// flow is pending and, once finished, until its reset timer removes it.
type flowRecord struct {
	id         string
	loopbackAt string // where its loopback listener binds first
	key        connid.ID
	method     Method
	redirect   RedirectMode
	cfg        oauth2.Config
	complete   func(context.Context, *oauth2.Token) error
	// tokenOpts are the TokenParams of the request; rejected its
	// ClientRejected.
	tokenParams url.Values
	resumeData  []byte
	tokenOpts   []oauth2.AuthCodeOption
	rejected    func()
	unanswered  func() // Request.Unanswered
	name        string // the provider's display name, for the result page
	issuer      string // Request.Issuer
	issRequired bool   // Request.IssuerRequired
	binding     string // Request.Binding

	ctx    context.Context // ends when the flow leaves pending
	cancel context.CancelFunc
	ready  chan struct{} // closed once Start has set the flow up
	done   chan struct{} // closed when the flow leaves pending

	// Guarded by Manager.mu.
	state           State
	detail          string
	authorizeURL    string
	redirectURI     string
	userCode        string
	verificationURI string
	expiresAt       time.Time
	completing      bool          // the callback was accepted (or the device token arrived): too late to cancel
	endedElsewhere  bool          // another instance ended it, as the store says
	claim           string        // a device flow's claim on its record in the store
	err             error         // why the flow ended, nil if connected
	timers          []func() bool // stop functions
	loopback        *loopbackServer
}

// Start starts a flow for req.Key and returns its snapshot. While a flow is
// pending for that key, Start starts nothing (no second flow, no second
// listener) and returns the pending flow, also to concurrent callers; if
// that flow has another method or redirect mode it returns it with
// [ErrConflict]. A finished flow of the key is replaced.
//
// Errors: [ErrInvalidRequest] (wrapped) for a malformed request,
// [ErrDeviceUnsupported], [ErrClosed], a listener error, and
// a [*Failure] with the failed flow when the device authorization request
// fails at the server (for example [CodeRateLimited]).
//
// ctx bounds only the start (the device authorization request); the flow
// itself lives until it finishes, is cancelled or the manager is closed.
func (m *Manager) Start(ctx context.Context, req Request) (Flow, error) {
	defer req.Loopback.Release() // unless the flow took it
	req, opts, err := prepareRequest(req)
	if err != nil {
		return m.Status(ctx, req.Key), err
	}

	m.mu.Lock()
	local := m.flows[req.Key]
	sync := local != nil && local.state == StatePending && local.method == MethodBrowser
	m.mu.Unlock()
	if sync {
		// A browser flow of this Manager that another instance sharing the
		// Store completed or cancelled ends here first: joining it would
		// hand out a link whose state is spent.
		m.Status(ctx, req.Key)
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Flow{State: StateIdle}, ErrClosed
	}
	if f := m.flows[req.Key]; f != nil && f.state == StatePending {
		m.mu.Unlock()
		return m.joinPending(ctx, f, req)
	}
	if old := m.flows[req.Key]; old != nil {
		// A finished flow is replaced; its reset timer must not remove
		// the new one (it checks identity, but it need not run at all).
		old.stopTimersLocked()
		delete(m.flows, req.Key)
	}
	fctx, cancel := context.WithCancel(m.ctx)
	f := &flowRecord{
		id:          rand.Text(),
		key:         req.Key,
		method:      req.Method,
		redirect:    req.Redirect,
		loopbackAt:  req.LoopbackAddr,
		cfg:         req.Config,
		complete:    req.Complete,
		tokenParams: req.TokenParams,
		resumeData:  req.ResumeData,
		tokenOpts:   tokenOptions(req.TokenParams),
		rejected:    req.ClientRejected,
		unanswered:  req.Unanswered,
		name:        req.DisplayName,
		issuer:      req.Issuer,
		issRequired: req.IssuerRequired,
		binding:     req.Binding,
		ctx:         fctx,
		cancel:      cancel,
		ready:       make(chan struct{}),
		done:        make(chan struct{}),
		state:       StatePending,
		detail:      m.say(ReasonStarting),
	}
	f.cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams

	if f.method == MethodBrowser {
		defer m.mu.Unlock()
		defer close(f.ready)
		if err := m.startBrowserLocked(f, req, opts); err != nil {
			cancel()
			return m.statusLocked(req.Key), err
		}
		m.flows[req.Key] = f
		m.logFlow(f).Str("redirect", string(f.redirect)).Msg("flow: flow started")
		m.changedLocked(f)
		return f.snapshotLocked(), nil
	}
	m.flows[req.Key] = f
	m.mu.Unlock()
	return m.startDevice(ctx, f, opts)
}

// joinPending returns the pending flow f to a Start for the same key.
func (m *Manager) joinPending(ctx context.Context, f *flowRecord, req Request) (Flow, error) {
	select {
	case <-f.ready:
	case <-ctx.Done():
		return m.Status(context.WithoutCancel(ctx), req.Key), ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	snap, ferr := f.snapshotLocked(), f.err
	if f.method != req.Method || f.redirect != req.Redirect {
		return snap, ErrConflict
	}
	return snap, ferr
}

// startBrowserLocked sets up a browser flow: state, PKCE verifier, redirect
// URI (binding the loopback listener), authorization URL and timers.
func (m *Manager) startBrowserLocked(f *flowRecord, req Request, opts []oauth2.AuthCodeOption) error {
	secret, verifier := newStateParam(), oauth2.GenerateVerifier()
	if f.redirect == RedirectLoopback {
		lb, err := m.listenLoopbackLocked(f, req.Loopback)
		if err != nil {
			return err
		}
		f.loopback = lb
		f.cfg.RedirectURL = lb.redirectURI
		f.timers = append(f.timers, m.clock.AfterFunc(m.loopbackTimeout, func() {
			m.expire(f, &Failure{Code: CodeTimedOut, Detail: m.say(ReasonTimedOut)})
		}))
	} else {
		f.cfg.RedirectURL = req.CallbackURL
	}
	f.timers = append(f.timers, m.clock.AfterFunc(StateTTL, func() {
		m.expire(f, &Failure{Code: CodeExpired, Detail: m.say(ReasonStateExpired)})
	}))
	// The flow ends at whichever comes first: the state's expiry or, for a
	// loopback flow, the listener's timeout; a countdown shows the earlier.
	f.expiresAt = m.clock.Now().Add(StateTTL)
	if f.redirect == RedirectLoopback && m.loopbackTimeout < StateTTL {
		f.expiresAt = m.clock.Now().Add(m.loopbackTimeout)
	}
	f.redirectURI = f.cfg.RedirectURL
	opts = append(opts, oauth2.S256ChallengeOption(verifier))
	f.authorizeURL = f.cfg.AuthCodeURL(secret, opts...)
	f.detail = m.say(ReasonWaitingBrowser)
	p := Pending{Key: f.key, ID: f.id, State: secret, Verifier: verifier, ExpiresAt: f.expiresAt, Config: f.cfg, TokenParams: f.tokenParams,
		Issuer: f.issuer, IssuerRequired: f.issRequired, Binding: f.binding, ResumeData: f.resumeData, Flow: f.snapshotLocked()}
	if err := m.store.Put(m.ctx, p); err != nil {
		f.stopTimersLocked()
		if lb := f.loopback; lb != nil {
			f.loopback = nil
			m.closeLoopbackLocked(lb)
		}
		return fmt.Errorf("flow: keep the pending flow: %w", err)
	}
	return nil
}

// LoopbackRedirectURI is the redirect URI of a loopback flow when the
// listener gets its first address: "http://<LoopbackAddr>/callback". When
// that port is taken the listener takes another, which servers that follow
// RFC 8252 section 7.3 (any port for a loopback IP) still accept; a client
// registers this URI. With port 0 (any port) the URI names none:
// "http://127.0.0.1/callback".
func (m *Manager) LoopbackRedirectURI() string { return LoopbackRedirectURI(m.loopbackAddr) }

// LoopbackRedirectURI is the redirect URI of a loopback listener at addr,
// as a client registers it: "http://<addr>/callback", or with port 0 (any
// port) one that names none, such as "http://127.0.0.1/callback".
func LoopbackRedirectURI(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return "http://" + host + "/callback"
	}
	return "http://" + addr + "/callback"
}

// Status returns a snapshot of key's flow; State is [StateIdle] when there
// is none. A browser flow that another instance sharing the [Store] started,
// completed or cancelled is reported as the store records it (asked under
// ctx); a flow of this Manager that ended elsewhere ends here too.
func (m *Manager) Status(ctx context.Context, key connid.ID) Flow {
	m.mu.Lock()
	f := m.flows[key]
	if f != nil && (f.state != StatePending || f.completing) {
		defer m.mu.Unlock()
		return f.snapshotLocked()
	}
	m.mu.Unlock()
	sf, ok, err := m.store.Status(ctx, key)
	if err != nil {
		m.log.Warn().Err(err).Msg("flow: the pending-flow store could not say how a flow stands")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if f == nil || m.flows[key] != f {
		if ok {
			return sf
		}
		return m.statusLocked(key)
	}
	if ok && sf.ID == f.id && sf.State != StatePending && f.state == StatePending && !f.completing {
		f.endedElsewhere = true
		var err error = ErrCancelled
		if sf.State == StateError {
			err = &Failure{Code: CodeClosed, Detail: sf.Detail}
		} else if sf.State == StateConnected {
			err = nil
		}
		m.endLocked(ctx, f, sf.State, sf.Detail, err)
	}
	return f.snapshotLocked()
}

func (m *Manager) statusLocked(key connid.ID) Flow {
	if f := m.flows[key]; f != nil {
		return f.snapshotLocked()
	}
	return Flow{State: StateIdle}
}

// Cancel ends key's pending flow, closing its loopback listener (the port
// is free when Cancel returns) and stopping its device polling; the key
// becomes [StateIdle] (the snapshot keeps the flow's id and Detail
// "Cancelled" until the error reset interval). It reports whether a pending
// flow was cancelled. A flow whose callback was already accepted can no
// longer be cancelled: it ends connected or failed within moments. A flow
// of another instance is cancelled in the shared [Store], asked under ctx.
func (m *Manager) Cancel(ctx context.Context, key connid.ID) bool {
	m.mu.Lock()
	f := m.flows[key]
	if f != nil {
		if f.state != StatePending || f.completing {
			m.mu.Unlock()
			return false
		}
		m.endLocked(ctx, f, StateIdle, m.say(ReasonCancelled), ErrCancelled)
		m.mu.Unlock()
		f.unansweredHook()
		return true
	}
	m.mu.Unlock()
	// A flow of another instance, as the shared store knows it.
	sf, ok, err := m.store.Status(ctx, key)
	if err != nil || !ok || sf.State != StatePending {
		return false
	}
	sf.State, sf.Detail, sf.AuthorizeURL, sf.UserCode = StateIdle, m.say(ReasonCancelled), "", ""
	done, err := m.store.Finish(ctx, key, sf.ID, sf)
	if err != nil {
		m.log.Warn().Err(err).Msg("flow: the pending-flow store could not cancel a flow")
	}
	return done
}

// fail ends f with fe, unless it already ended, and returns it with the
// error it ended with. The end is recorded under ctx's values but not its
// cancellation: it is the flow's, past the request.
func (m *Manager) fail(ctx context.Context, f *flowRecord, fe *Failure) (Flow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.endLocked(context.WithoutCancel(ctx), f, StateError, fe.Detail, fe)
	return f.snapshotLocked(), f.err
}

// detached returns a context with ctx's values that ends with life (a
// flow's, or the Manager's) rather than with ctx, and the function that
// releases it.
func detached(ctx, life context.Context) (context.Context, func()) {
	d, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopAfter := context.AfterFunc(life, cancel)
	return d, func() { stopAfter(); cancel() }
}

// own is the context of what the manager does on its own, past any
// request: a device poller's end, a timer, Close. It is never cancelled
// (Close waits for this work); the flow store bounds each call.
func (m *Manager) own() context.Context { return context.WithoutCancel(m.ctx) }

// expire ends f with fe if it is still pending and no callback is being
// completed; the state and loopback timers call it.
func (m *Manager) expire(f *flowRecord, fe *Failure) {
	m.mu.Lock()
	ended := f.state == StatePending && !f.completing && m.endLocked(m.own(), f, StateError, fe.Detail, fe)
	m.mu.Unlock()
	if ended {
		f.unansweredHook()
	}
}

// unansweredHook calls a browser flow's Unanswered hook; the flow has
// ended without an authorization response.
func (f *flowRecord) unansweredHook() {
	if f.method == MethodBrowser && f.unanswered != nil {
		f.unanswered()
	}
}

// endLocked moves f out of pending to state (StateIdle when cancelled) and
// reports whether it did. It forgets the secrets, stops the timers, the
// listener and any device polling, wakes waiters and schedules the reset
// to idle.
func (m *Manager) endLocked(ctx context.Context, f *flowRecord, state State, detail string, err error) bool {
	if f.state != StatePending {
		return false
	}
	f.state, f.detail, f.err = state, detail, err
	f.authorizeURL, f.userCode = "", ""
	if !f.endedElsewhere {
		// Every instance reports the end; the secrets are forgotten. The
		// store is asked under m.mu: the in-memory one answers at once, a
		// shared one within storeTimeout.
		if _, err := m.store.Finish(ctx, f.key, f.id, f.snapshotLocked()); err != nil {
			m.log.Warn().Str("flow_id", f.id).Err(err).Msg("flow: the pending-flow store could not record the end of a flow")
		}
	}
	m.changedLocked(f)
	f.stopTimersLocked()
	f.cancel()
	close(f.done)
	if lb := f.loopback; lb != nil {
		f.loopback = nil
		m.closeLoopbackLocked(lb)
	}
	ev := m.logFlow(f).Str("state", string(state))
	var fe *Failure
	if errors.As(err, &fe) {
		ev = ev.Str("error", fe.Code)
		if fe.Err != nil {
			ev = ev.Str("cause", causeForLog(fe.Err))
		}
	}
	ev.Msg("flow: flow ended")

	if m.flows[f.key] != f || m.closed {
		return true
	}
	reset := m.errorReset // also for a cancelled flow, reported idle meanwhile
	if state == StateConnected {
		reset = m.connectedReset
	}
	f.timers = append(f.timers, m.clock.AfterFunc(reset, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.flows[f.key] == f {
			delete(m.flows, f.key)
			_ = m.store.Delete(m.own(), f.key, f.id)
		}
	}))
	return true
}

// changedLocked tells Config.OnChange how f stands.
func (m *Manager) changedLocked(f *flowRecord) {
	if m.onChange != nil {
		m.onChange(f.key, f.snapshotLocked())
	}
}

// Wait blocks until key's flow leaves pending, or ctx is done, and returns
// the flow with the error it ended with: nil when connected, a [*Failure],
// or [ErrCancelled]. With no flow for key it returns at once with a
// [StateIdle] snapshot; with a finished one, that flow and its error.
func (m *Manager) Wait(ctx context.Context, key connid.ID) (Flow, error) {
	m.mu.Lock()
	f := m.flows[key]
	m.mu.Unlock()
	if f == nil {
		return Flow{State: StateIdle}, nil
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return m.Status(context.WithoutCancel(ctx), key), ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return f.snapshotLocked(), f.err
}

// Close ends every pending flow (with [CodeClosed]), closes the
// loopback listeners, stops device polling and waits for all of it,
// including Complete calls in progress. Start fails afterwards. Close is
// idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		for _, f := range m.flows {
			m.endLocked(m.own(), f, StateError, m.say(ReasonClosed), &Failure{Code: CodeClosed, Detail: m.say(ReasonClosed)})
			f.stopTimersLocked()
		}
	}
	m.mu.Unlock()
	m.stop()
	m.wg.Wait()
	return nil
}

func (f *flowRecord) snapshotLocked() Flow {
	return Flow{
		ID:              f.id,
		State:           f.state,
		Method:          f.method,
		Detail:          f.detail,
		AuthorizeURL:    f.authorizeURL,
		RedirectURI:     f.redirectURI,
		UserCode:        f.userCode,
		VerificationURI: f.verificationURI,
		ExpiresAt:       f.expiresAt,
		Binding:         f.binding,
	}
}

func (f *flowRecord) stopTimersLocked() {
	for _, stop := range f.timers {
		stop()
	}
	f.timers = nil
}

func (m *Manager) logFlow(f *flowRecord) *zerolog.Event {
	return m.log.Info().
		Str("flow_id", f.id).
		Str("profile", f.key.Profile).
		Str("provider", f.key.Provider).
		Str("method", string(f.method))
}

// clientRejected calls f's ClientRejected hook, before the flow ends, when
// err is the token endpoint's invalid_client or unauthorized_client.
func (f *flowRecord) clientRejected(err error) { clientRejected(f.rejected, err) }

// clientRejected calls hook, when not nil, if err is the token endpoint's
// invalid_client or unauthorized_client.
func clientRejected(hook func(), err error) {
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	if !ok || hook == nil || (re.ErrorCode != "invalid_client" && re.ErrorCode != "unauthorized_client") {
		return
	}
	hook()
}
