package flow

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/tokenresp"
	"github.com/memconnect/memconnect/internal/wire"
)

// Defaults of a [Manager].
const (
	// DefaultLoopbackAddr is where the loopback listener binds first: the
	// port the Honcho client is registered with, on the IPv4 loopback
	// literal (RFC 8252 sections 7.3 and 8.3).
	DefaultLoopbackAddr = "127.0.0.1:8765"

	// StateTTL is how long the state parameter of a browser flow, and so
	// the flow, stays answerable.
	StateTTL = 10 * time.Minute

	// DefaultLoopbackTimeout is how long a loopback listener waits for the
	// browser before the flow ends with [CodeTimedOut].
	DefaultLoopbackTimeout = 5 * time.Minute

	// DefaultErrorReset is how long a flow that ended in [StateError] is
	// reported before the key reverts to [StateIdle].
	DefaultErrorReset = 60 * time.Second

	// DefaultConnectedReset is how long a flow that ended in
	// [StateConnected] is reported before the key reverts to [StateIdle]:
	// long enough for any poller to see it.
	DefaultConnectedReset = 5 * time.Minute

	// exchangeTimeout bounds the code exchange, and separately the
	// Complete call, of one flow.
	exchangeTimeout = 30 * time.Second
)

// Person-facing details of a flow.
const (
	detailStarting       = "Starting sign-in"
	detailWaitingBrowser = "Waiting for browser consent"
	detailWaitingDevice  = "Enter the code at the verification page to approve the sign-in"
	detailConnected      = "Connected"
	detailCancelled      = "Cancelled"
	detailStateExpired   = "The sign-in link expired before it was used; start again"
	detailTimedOut       = "Sign-in timed out: no answer came back. If the authorization server showed an error page instead (a redirect URI or client it does not accept is the likely cause), that page says why; start again"
	detailClosed         = "The application is shutting down"
	detailNoCode         = "The authorization server sent no authorization code; start again"
	detailIssuer         = "The sign-in answer did not come from the authorization server it was sent to (RFC 9207), so it was not used; start again"
	detailDenied         = "Sign-in was denied"
	detailDeviceExpired  = "The code expired before it was approved"
	detailRateLimited    = "Too many sign-in attempts; wait a minute and try again"
	detailExchange       = "The authorization server did not accept the sign-in; start again"
	detailUnreachable    = "Could not reach the authorization server; check the connection and try again"
	detailComplete       = "Signed in, but the credentials could not be saved; try again"
	detailDeviceStart    = "Could not start the sign-in at the authorization server; try again"
	detailDeviceFailed   = "Sign-in failed at the authorization server; start again"
)

// Config configures a [Manager]. The zero value is ready to use: every
// field has a default.
type Config struct {
	// Clock runs state expiry, the loopback timeout and the reset of
	// finished flows; nil means the time package. The polling of a device
	// flow is paced by [oauth2.Config.DeviceAccessToken] on real time.
	Clock Clock

	// HTTPClient makes the code exchange and the device flow requests; nil
	// means a client with a 30 second timeout.
	HTTPClient *http.Client

	// Logger receives a line per flow started and ended; the zero value
	// discards. Flow ids, keys, methods and outcomes are logged; codes,
	// verifiers, state parameters, tokens and callback queries never are.
	Logger zerolog.Logger

	// Store keeps the state parameter and PKCE verifier of each pending
	// browser flow until its callback claims them; nil means an in-memory
	// store of this Manager's own.
	Store Store

	// LoopbackAddr is where the loopback listener binds first; "" means
	// [DefaultLoopbackAddr]. The host must be a loopback IP literal. When
	// the port is taken the listener binds an OS-assigned port on the same
	// IP instead (RFC 8252 section 7.3 lets the client pick any port).
	LoopbackAddr string

	// LoopbackTimeout is how long a loopback listener waits for the
	// browser; zero means [DefaultLoopbackTimeout].
	LoopbackTimeout time.Duration

	// ErrorReset is how long a failed or cancelled flow is reported before
	// its key reverts to [StateIdle]; zero means [DefaultErrorReset].
	ErrorReset time.Duration

	// ConnectedReset is how long a connected flow is reported before its
	// key reverts to [StateIdle]; zero means [DefaultConnectedReset].
	ConnectedReset time.Duration

	// Resume, if not nil, completes browser flows that another instance
	// started: a callback whose key has no flow here claims the state from
	// the (shared) Store, exchanges the code, and stores the grant with
	// the function Resume returns for the key and the flow's client and
	// endpoints (cfg, as the starting instance recorded them). Without it
	// such a callback is [ErrInvalidState], and the Store is not asked.
	Resume func(ctx context.Context, key Key, cfg oauth2.Config) (complete func(context.Context, *oauth2.Token) error, err error)

	// OnChange, if not nil, is told every flow of this Manager that starts
	// (pending) or ends (connected, error, or idle when cancelled), with
	// the flow as Status reports it: nothing secret. It is called with the
	// Manager's lock held, so it must return at once and must not call the
	// Manager; hand the flow to a channel or an event bus.
	OnChange func(key Key, f Flow)
}

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
	clock           Clock
	client          *http.Client
	log             zerolog.Logger
	store           Store
	loopbackAddr    string
	loopbackTimeout time.Duration
	errorReset      time.Duration
	connectedReset  time.Duration
	resume          func(context.Context, Key, oauth2.Config) (func(context.Context, *oauth2.Token) error, error)
	onChange        func(Key, Flow)

	ctx  context.Context // the manager's lifetime, ended by Close; parent of every flow's
	stop context.CancelFunc
	wg   sync.WaitGroup // loopback servers and device pollers

	mu     sync.Mutex // guards flows, closed and every flowRecord's mutable fields
	flows  map[Key]*flowRecord
	closed bool
}

// flowRecord is one flow. A key's record is in Manager.flows while the
// flow is pending and, once finished, until its reset timer removes it.
type flowRecord struct {
	id       string
	key      Key
	method   Method
	redirect RedirectMode
	cfg      oauth2.Config
	complete func(context.Context, *oauth2.Token) error
	// tokenOpts are the TokenParams of the request; rejected its
	// ClientRejected.
	tokenParams url.Values
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

// NewManager returns a Manager configured by c; see [Config] for the
// defaults.
func NewManager(c Config) *Manager {
	m := &Manager{
		clock:           c.Clock,
		client:          c.HTTPClient,
		log:             c.Logger,
		store:           c.Store,
		loopbackAddr:    cmp.Or(c.LoopbackAddr, DefaultLoopbackAddr),
		loopbackTimeout: positive(c.LoopbackTimeout, DefaultLoopbackTimeout),
		errorReset:      positive(c.ErrorReset, DefaultErrorReset),
		connectedReset:  positive(c.ConnectedReset, DefaultConnectedReset),
		resume:          c.Resume,
		onChange:        c.OnChange,
		flows:           make(map[Key]*flowRecord),
	}
	if m.clock == nil {
		m.clock = systemClock{}
	}
	if m.client == nil {
		m.client = &http.Client{Timeout: 30 * time.Second}
	}
	if m.store == nil {
		m.store = newMemoryStore()
	} else {
		m.store = boundedStore{m.store, storeTimeout}
	}
	m.ctx, m.stop = context.WithCancel(context.Background())
	return m
}

// positive returns d, or def when d is not positive.
func positive(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
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
	req, opts, err := prepareRequest(req)
	if err != nil {
		return m.Status(req.Key), err
	}

	m.mu.Lock()
	local := m.flows[req.Key]
	sync := local != nil && local.state == StatePending && local.method == MethodBrowser
	m.mu.Unlock()
	if sync {
		// A browser flow of this Manager that another instance sharing the
		// Store completed or cancelled ends here first: joining it would
		// hand out a link whose state is spent.
		m.Status(req.Key)
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
		cfg:         req.Config,
		complete:    req.Complete,
		tokenParams: req.TokenParams,
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
		detail:      detailStarting,
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
		return m.Status(req.Key), ctx.Err()
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
		lb, err := m.listenLoopbackLocked(f)
		if err != nil {
			return err
		}
		f.loopback = lb
		f.cfg.RedirectURL = lb.redirectURI
		f.timers = append(f.timers, m.clock.AfterFunc(m.loopbackTimeout, func() {
			m.expire(f, &Failure{Code: CodeTimedOut, Detail: detailTimedOut})
		}))
	} else {
		f.cfg.RedirectURL = req.CallbackURL
	}
	f.timers = append(f.timers, m.clock.AfterFunc(StateTTL, func() {
		m.expire(f, &Failure{Code: CodeExpired, Detail: detailStateExpired})
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
	f.detail = detailWaitingBrowser
	p := Pending{Key: f.key, ID: f.id, State: secret, Verifier: verifier, ExpiresAt: f.expiresAt, Config: f.cfg, TokenParams: f.tokenParams,
		Issuer: f.issuer, IssuerRequired: f.issRequired, Binding: f.binding, Flow: f.snapshotLocked()}
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
func (m *Manager) LoopbackRedirectURI() string {
	if host, port, err := net.SplitHostPort(m.loopbackAddr); err == nil && port == "0" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return "http://" + host + "/callback"
	}
	return "http://" + m.loopbackAddr + "/callback"
}

// Status returns a snapshot of key's flow; State is [StateIdle] when there
// is none. A browser flow that another instance sharing the [Store] started,
// completed or cancelled is reported as the store records it; a flow of
// this Manager that ended elsewhere ends here too.
func (m *Manager) Status(key Key) Flow {
	m.mu.Lock()
	f := m.flows[key]
	if f != nil && (f.state != StatePending || f.completing) {
		defer m.mu.Unlock()
		return f.snapshotLocked()
	}
	m.mu.Unlock()
	sf, ok, err := m.store.Status(context.Background(), key)
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
		m.endLocked(f, sf.State, sf.Detail, err)
	}
	return f.snapshotLocked()
}

func (m *Manager) statusLocked(key Key) Flow {
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
// longer be cancelled: it ends connected or failed within moments.
func (m *Manager) Cancel(key Key) bool {
	m.mu.Lock()
	f := m.flows[key]
	if f != nil {
		if f.state != StatePending || f.completing {
			m.mu.Unlock()
			return false
		}
		m.endLocked(f, StateIdle, detailCancelled, ErrCancelled)
		m.mu.Unlock()
		f.unansweredHook()
		return true
	}
	m.mu.Unlock()
	// A flow of another instance, as the shared store knows it.
	ctx := context.Background()
	sf, ok, err := m.store.Status(ctx, key)
	if err != nil || !ok || sf.State != StatePending {
		return false
	}
	sf.State, sf.Detail, sf.AuthorizeURL, sf.UserCode = StateIdle, detailCancelled, "", ""
	done, err := m.store.Finish(ctx, key, sf.ID, sf)
	if err != nil {
		m.log.Warn().Err(err).Msg("flow: the pending-flow store could not cancel a flow")
	}
	return done
}

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
// [CallbackOutcome] is the matching page for a person. ctx is not
// used for the exchange, which belongs to the flow (Cancel and Close end
// it), so a browser that goes away does not abandon a spent code.
func (m *Manager) Callback(ctx context.Context, key Key, q url.Values) (Flow, error) {
	return m.CallbackBound(ctx, key, q, "")
}

// CallbackBound is [Manager.Callback] for a request that presents nonce,
// the browser binding of the flow it completes ([Request.Binding]); "" for
// none. A flow bound to another nonce ends with [CodeOtherBrowser] and its
// code is not exchanged.
func (m *Manager) CallbackBound(ctx context.Context, key Key, q url.Values, nonce string) (Flow, error) {
	_ = ctx
	return m.completeCallback(key, nil, q, nonce)
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

// detailOtherBrowser is the detail of a flow completed from a browser
// other than the one that started it.
const detailOtherBrowser = "This sign-in was started in another browser, so it was not completed here; start it again from this browser"

// completeCallback is the one completion code of browser flows. owner is
// the flow whose loopback listener received the callback, or nil for
// [Manager.Callback].
func (m *Manager) completeCallback(key Key, owner *flowRecord, q url.Values, nonce string) (Flow, error) {
	got := q.Get("state")
	m.mu.Lock()
	f := m.flows[key]
	if f == nil && owner == nil && m.resume != nil && !m.closed && got != "" && len(q["state"]) == 1 {
		m.mu.Unlock()
		return m.completeResumed(key, got, q, nonce)
	}
	if f == nil || (owner != nil && f != owner) || f.method != MethodBrowser ||
		f.state != StatePending || f.completing || got == "" || len(q["state"]) != 1 {
		snap := m.statusLocked(key)
		m.mu.Unlock()
		return snap, ErrInvalidState
	}
	m.mu.Unlock()

	// The state is single use: once claimed no other callback matches, on
	// this instance or any other sharing the store.
	p, err := m.store.Claim(f.ctx, key, got)
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
		fe := &Failure{Code: CodeExpired, Detail: detailStateExpired}
		m.endLocked(f, StateError, fe.Detail, fe)
		snap := f.snapshotLocked()
		m.mu.Unlock()
		return snap, fmt.Errorf("%w: expired", ErrInvalidState)
	}
	f.completing = true
	cfg := f.cfg
	m.mu.Unlock()

	if !boundTo(f.binding, nonce) {
		return m.fail(f, &Failure{Code: CodeOtherBrowser, Detail: detailOtherBrowser})
	}
	if fe := checkIssuer(q, f.issuer, f.issRequired); fe != nil {
		return m.fail(f, fe)
	}
	if e := q.Get("error"); e != "" {
		return m.fail(f, authorizationError(e, q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" {
		return m.fail(f, &Failure{Code: CodeAuthorization, Detail: detailNoCode})
	}
	capture := &tokenresp.Capture{}
	ctx, cancel := context.WithTimeout(context.WithValue(f.ctx, oauth2.HTTPClient, capture.Client(m.client)), exchangeTimeout)
	defer cancel()
	tok, err := cfg.Exchange(ctx, code, append(f.tokenOpts, oauth2.VerifierOption(p.Verifier))...)
	tok, err = m.kept(f.id, capture, tok, err)
	if err != nil {
		f.clientRejected(err)
		return m.fail(f, tokenError(CodeExchange, detailExchange, err))
	}
	return m.install(f, tok)
}

// completeResumed completes a browser flow another instance started, from
// its record in the shared Store: the same steps as completeCallback, with
// no flow of this Manager to report them in. The result is returned, and
// logged; the starting instance reports its flow as it knows it.
func (m *Manager) completeResumed(key Key, state string, q url.Values, nonce string) (Flow, error) {
	p, err := m.store.Claim(m.ctx, key, state)
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
		if _, err := m.store.Finish(m.ctx, key, p.ID, f); err != nil {
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
		fe := &Failure{Code: CodeExpired, Detail: detailStateExpired}
		end(fe)
		return f, fmt.Errorf("%w: expired", ErrInvalidState)
	}
	if !boundTo(p.Binding, nonce) {
		return end(&Failure{Code: CodeOtherBrowser, Detail: detailOtherBrowser})
	}
	if fe := checkIssuer(q, p.Issuer, p.IssuerRequired); fe != nil {
		return end(fe)
	}
	if e := q.Get("error"); e != "" {
		return end(authorizationError(e, q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" {
		return end(&Failure{Code: CodeAuthorization, Detail: detailNoCode})
	}
	ctx, cancel := context.WithTimeout(m.ctx, exchangeTimeout)
	defer cancel()
	complete, err := m.resume(ctx, key, p.Config)
	if err != nil {
		return end(&Failure{Code: CodeComplete, Detail: detailComplete, Err: err})
	}
	capture := &tokenresp.Capture{}
	tok, err := p.Config.Exchange(context.WithValue(ctx, oauth2.HTTPClient, capture.Client(m.client)), code,
		append(tokenOptions(p.TokenParams), oauth2.VerifierOption(p.Verifier))...)
	tok, err = m.kept(p.ID, capture, tok, err)
	if err != nil {
		return end(tokenError(CodeExchange, detailExchange, err))
	}
	if err := callComplete(ctx, complete, tok); err != nil {
		return end(completeFailure(err))
	}
	f.State = StateConnected
	return end(&Failure{Detail: detailConnected})
}

// checkIssuer checks the authorization response's "iss" parameter (RFC
// 9207 section 2.4): when present it must be issuer, exactly (when issuer
// is known), and when required it must be present, once. A response that
// fails is an authorization server mix-up, and its code is not used.
func checkIssuer(q url.Values, issuer string, required bool) *Failure {
	iss, present := q["iss"]
	switch {
	case !present && !required:
		return nil
	case !present, len(iss) != 1, issuer != "" && iss[0] != issuer:
		return &Failure{Code: CodeAuthorization, Detail: detailIssuer}
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

// install stores tok with the flow's Complete and then marks it connected.
// The caller has set f.completing.
func (m *Manager) install(f *flowRecord, tok *oauth2.Token) (Flow, error) {
	ctx, cancel := context.WithTimeout(f.ctx, exchangeTimeout)
	defer cancel()
	if err := callComplete(ctx, f.complete, tok); err != nil {
		return m.fail(f, completeFailure(err))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.endLocked(f, StateConnected, detailConnected, nil) {
		return f.snapshotLocked(), f.err
	}
	return f.snapshotLocked(), nil
}

// completeFailure is the failure of a Complete that returned err: its own
// words when err says what a person can do (it has a Detail method), else
// the general ones.
func completeFailure(err error) *Failure {
	detail := detailComplete
	var d interface{ Detail() string }
	if errors.As(err, &d) {
		detail = d.Detail()
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

// fail ends f with fe, unless it already ended, and returns it with the
// error it ended with.
func (m *Manager) fail(f *flowRecord, fe *Failure) (Flow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.endLocked(f, StateError, fe.Detail, fe)
	return f.snapshotLocked(), f.err
}

// expire ends f with fe if it is still pending and no callback is being
// completed; the state and loopback timers call it.
func (m *Manager) expire(f *flowRecord, fe *Failure) {
	m.mu.Lock()
	ended := f.state == StatePending && !f.completing && m.endLocked(f, StateError, fe.Detail, fe)
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
func (m *Manager) endLocked(f *flowRecord, state State, detail string, err error) bool {
	if f.state != StatePending {
		return false
	}
	f.state, f.detail, f.err = state, detail, err
	f.authorizeURL, f.userCode = "", ""
	if !f.endedElsewhere {
		// Every instance reports the end; the secrets are forgotten. The
		// store is asked under m.mu: the in-memory one answers at once, a
		// shared one within storeTimeout.
		if _, err := m.store.Finish(context.Background(), f.key, f.id, f.snapshotLocked()); err != nil {
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
			_ = m.store.Delete(context.Background(), f.key, f.id)
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
func (m *Manager) Wait(ctx context.Context, key Key) (Flow, error) {
	m.mu.Lock()
	f := m.flows[key]
	m.mu.Unlock()
	if f == nil {
		return Flow{State: StateIdle}, nil
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return m.Status(key), ctx.Err()
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
			m.endLocked(f, StateError, detailClosed, &Failure{Code: CodeClosed, Detail: detailClosed})
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

// prepareRequest validates req and returns the authorization request
// options its AuthParams make. It decides no default: the caller names the
// method and, for a browser flow, the redirect mode.
func prepareRequest(req Request) (Request, []oauth2.AuthCodeOption, error) {
	invalid := func(format string, args ...any) (Request, []oauth2.AuthCodeOption, error) {
		return req, nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
	}
	if req.Key.Profile == "" || req.Key.Provider == "" {
		return invalid("profile and provider are required")
	}
	if req.Complete == nil {
		return invalid("Complete is required")
	}
	if req.Config.ClientID == "" || req.Config.Endpoint.TokenURL == "" {
		return invalid("client id and token endpoint are required")
	}
	switch req.Method {
	case MethodBrowser:
		if req.Config.Endpoint.AuthURL == "" {
			return invalid("authorization endpoint is required")
		}
		switch req.Redirect {
		case RedirectLoopback:
		case RedirectCallback:
			u, err := url.Parse(req.CallbackURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.User != nil {
				return invalid("callback URL must be an absolute http(s) URL without fragment")
			}
		case "":
			return invalid("a browser flow needs a redirect mode")
		default:
			return invalid("unknown redirect mode %q", req.Redirect)
		}
	case MethodDevice:
		if req.Redirect != "" {
			return invalid("a device flow has no redirect mode")
		}
		if !req.DeviceSupported || req.Config.Endpoint.DeviceAuthURL == "" {
			return req, nil, ErrDeviceUnsupported
		}
	case "":
		return invalid("a method is required")
	default:
		return invalid("unknown method %q", req.Method)
	}

	for k := range req.TokenParams {
		switch k {
		case "client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method",
			"grant_type", "code", "code_verifier", "device_code", "refresh_token":
			return invalid("token parameter %q is set by the flow", k)
		}
	}
	var opts []oauth2.AuthCodeOption
	for _, k := range slices.Sorted(maps.Keys(req.AuthParams)) {
		switch k {
		case "client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method":
			return invalid("parameter %q is set by the flow", k)
		}
		if v := req.AuthParams.Get(k); v != "" {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	return req, opts, nil
}

// tokenOptions turns a request's TokenParams into options of the token
// requests, leaving out empty values.
func tokenOptions(params url.Values) []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if v := params.Get(k); v != "" {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	return opts
}

// clientRejected calls f's ClientRejected hook, before the flow ends, when
// err is the token endpoint's invalid_client or unauthorized_client.
func (f *flowRecord) clientRejected(err error) {
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	if !ok || f.rejected == nil || (re.ErrorCode != "invalid_client" && re.ErrorCode != "unauthorized_client") {
		return
	}
	f.rejected()
}

// newStateParam returns a state parameter: 256 random bits, base64url
// (RFC 6749 section 10.10 asks for at least 128).
func newStateParam() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authorizationError is the Failure for an error= callback
// (RFC 6749 section 4.1.2.1). The server's words are kept, cleaned and
// shortened; pages escape them.
func authorizationError(code, desc string) *Failure {
	if code == "access_denied" {
		return &Failure{Code: CodeAccessDenied, Detail: detailDenied}
	}
	detail := "The authorization server refused the sign-in: " + wire.Printable(code, 64)
	if desc = wire.Printable(desc, 200); desc != "" {
		detail += " (" + desc + ")"
	}
	return &Failure{Code: CodeAuthorization, Detail: detail}
}

// tokenError classifies a failure of a token or device endpoint request.
func tokenError(code, detail string, err error) *Failure {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusTooManyRequests:
		return &Failure{Code: CodeRateLimited, Detail: detailRateLimited, Err: err}
	case errors.As(err, &re):
		return &Failure{Code: code, Detail: detail, Err: err}
	default:
		return &Failure{Code: code, Detail: detailUnreachable, Err: err}
	}
}

// causeForLog describes err for a log line without risking a secret: of an
// [*oauth2.RetrieveError] only the status and error code (its body could echo
// the request).
func causeForLog(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		s := re.ErrorCode
		if re.Response != nil {
			s = strings.TrimSpace(fmt.Sprintf("%d %s", re.Response.StatusCode, s))
		}
		return "oauth2 retrieve error " + s
	}
	return err.Error()
}
