package flow

import (
	"cmp"
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/connid"
)

// Defaults of a [Manager].
const (
	// DefaultLoopbackAddr is where the loopback listener binds unless a
	// request or the Config names an address: any free port on the IPv4
	// loopback literal (RFC 8252 sections 7.3 and 8.3). A provider whose
	// client is registered with a fixed port asks for it per request
	// ([Request.LoopbackAddr]).
	DefaultLoopbackAddr = "127.0.0.1:0"

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

// Completion is how a browser flow that another instance started completes
// here ([Config.Resume]): what its [Request] had as Complete and
// ClientRejected.
type Completion struct {
	// Complete stores the grant, as [Request.Complete].
	Complete func(context.Context, *oauth2.Token) error
	// ClientRejected, if not nil, is called when the token endpoint
	// rejects the flow's client, as [Request.ClientRejected].
	ClientRejected func()
}

// Config configures a [Manager]. The zero value is ready to use: every
// field has a default.
type Config struct {
	// Clock runs state expiry, the loopback timeout and the reset of
	// finished flows; nil means the time package. The polling of a device
	// flow is paced by [oauth2.Config.DeviceAccessToken] on real time.
	Clock clock.Clock

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

	// LoopbackAddr is where a loopback listener binds first unless the
	// flow's [Request.LoopbackAddr] names an address; "" means
	// [DefaultLoopbackAddr], any free port. The host must be a loopback IP literal. When
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
	// the (shared) Store, exchanges the code, and completes as the
	// [Completion] Resume returns for the key, the flow's client and
	// endpoints (cfg, as the starting instance recorded them) and the
	// request's [Request.ResumeData] says: the same completion the
	// starting instance's [Request] had. Without it such a callback is
	// [ErrInvalidState], and the Store is not asked.
	Resume func(ctx context.Context, key connid.ID, cfg oauth2.Config, data []byte) (Completion, error)

	// OnChange, if not nil, is told every flow of this Manager that starts
	// (pending) or ends (connected, error, or idle when cancelled), with
	// the flow as Status reports it: nothing secret. It is called with the
	// Manager's lock held, so it must return at once and must not call the
	// Manager; hand the flow to a channel or an event bus.
	OnChange func(key connid.ID, f Flow)

	// Page writes what the browser gets at the end of a flow on the
	// loopback listener; nil means [PlainPage]. A host gives its own, such
	// as the router's page, to say more in its words.
	Page PageFunc

	// Words puts the reasons of a flow's state in words ([Flow.Detail],
	// [Failure.Detail]); nil means [PlainWords]. The router gives its own.
	Words Words
}

// NewManager returns a Manager configured by c; see [Config] for the
// defaults.
func NewManager(c Config) *Manager {
	m := &Manager{
		clock:           clock.Or(c.Clock),
		client:          c.HTTPClient,
		log:             c.Logger,
		store:           c.Store,
		loopbackAddr:    cmp.Or(c.LoopbackAddr, DefaultLoopbackAddr),
		loopbackTimeout: positive(c.LoopbackTimeout, DefaultLoopbackTimeout),
		errorReset:      positive(c.ErrorReset, DefaultErrorReset),
		connectedReset:  positive(c.ConnectedReset, DefaultConnectedReset),
		resume:          c.Resume,
		onChange:        c.OnChange,
		page:            c.Page,
		words:           c.Words,
		flows:           make(map[connid.ID]*flowRecord),
	}
	if m.client == nil {
		m.client = &http.Client{Timeout: 30 * time.Second}
	}
	if m.page == nil {
		m.page = PlainPage
	}
	if m.words == nil {
		m.words = PlainWords
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
