package memconnect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/memconnect/memconnect/internal/testkit"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/oauthtest"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// prefix is where the tests' host router mounts memconnect.
const prefix = "/api/memory"

// fakeProvider is a provider without OAuth ("nooauth"), or one whose Status
// panics ("boom").
type fakeProvider struct {
	name  string
	panic bool
}

func (f fakeProvider) Name() string                       { return f.name }
func (f fakeProvider) DisplayName() string                { return strings.ToUpper(f.name[:1]) + f.name[1:] }
func (f fakeProvider) AuthMethods() []provider.AuthMethod { return nil }
func (f fakeProvider) Endpoints(context.Context, provider.Profile) (provider.Endpoints, error) {
	return provider.Endpoints{}, nil
}
func (f fakeProvider) GrantLocation(p provider.Profile) (provider.GrantLocation, error) {
	path := filepath.Join(p.Home, f.name+".json")
	return provider.GrantLocation{ReadPath: path, WritePath: path, Host: "x"}, nil
}
func (f fakeProvider) Store(path string) *oauth.Store { return oauth.NewStore(path) }
func (f fakeProvider) Status(context.Context, provider.Profile) (provider.Status, error) {
	if f.panic {
		panic("boom: a provider bug")
	}
	return provider.Status{}, nil
}

// renamed is the Honcho provider under another name, so that a registry can
// hold a second, differently configured Honcho.
type renamed struct {
	*honcho.Provider
	name string
}

func (r renamed) Name() string { return r.name }

// envConfig configures a test environment.
type envConfig struct {
	sessionToken string
	callback     bool                            // set CallbackBaseURL to the test server's /api/memory
	wrap         func(http.Handler) http.Handler // wraps the host router, if not nil
}

type envOption func(*envConfig)

func withSessionToken(tok string) envOption { return func(c *envConfig) { c.sessionToken = tok } }
func withCallback() envOption               { return func(c *envConfig) { c.callback = true } }
func withWrap(w func(http.Handler) http.Handler) envOption {
	return func(c *envConfig) { c.wrap = w }
}

// env is the router mounted at /api/memory in a host's chi router, served
// on 127.0.0.1, with an in-process authorization server behind the Honcho
// provider and a Hermes layout in a temporary directory.
//
// The registry holds "honcho", "broken" (Honcho whose device and token
// endpoints answer 503), "nooauth" (no OAuth) and "boom" (Status panics).
// Profiles: default, work, corrupt (its honcho.json is not JSON) and apikey
// (connected with an API key).
type env struct {
	t        *testing.T
	as       *oauthtest.Server
	root     string // $HERMES_HOME
	flows    *oauth.FlowManager
	logs     *testkit.SyncBuffer
	parent   chi.Router
	ts       *httptest.Server
	base     string // http://127.0.0.1:port/api/memory
	client   *http.Client
	token    string // the session token, if any
	exchange []exchange
	mu       sync.Mutex // guards exchange
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	var cfg envConfig
	for _, o := range opts {
		o(&cfg)
	}
	as := oauthtest.NewServer(oauthtest.WithGrantConfig(map[string]any{"peerName": "you", "workspace": "hermes"}))
	t.Cleanup(as.Close)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":"temporarily_unavailable"}`)
	}))
	t.Cleanup(bad.Close)

	userHome := t.TempDir()
	root := filepath.Join(userHome, ".hermes")
	for _, p := range []string{"work", "corrupt", "apikey"} {
		if err := os.MkdirAll(filepath.Join(root, "profiles", p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "profiles", "corrupt", "honcho.json"), "{not json")
	writeFile(t, filepath.Join(root, "profiles", "apikey", "honcho.json"),
		`{"hosts":{"hermes_apikey":{"apiKey":"plain-api-key-0123456789"}}}`)

	logs := &testkit.SyncBuffer{}
	logger := zerolog.New(logs)
	common := []honcho.Option{
		honcho.WithAuthorizeURL(as.AuthorizeURL()),
		honcho.WithRevocationURL(as.RevocationURL()),
		honcho.WithIssuer(as.URL), // its metadata announces the device flow
		honcho.WithUserHome(userHome),
		honcho.WithHTTPClient(as.Client()),
		honcho.WithLogger(logger),
	}
	hp := honcho.New(append(common, honcho.WithTokenURL(as.TokenURL()), honcho.WithDeviceAuthURL(as.DeviceAuthURL()))...)
	broken := renamed{honcho.New(append(common, honcho.WithTokenURL(bad.URL+"/oauth/token"), honcho.WithDeviceAuthURL(bad.URL+"/oauth/device"))...), "broken"}
	reg, err := provider.NewRegistry(hp, broken, fakeProvider{name: "nooauth"}, fakeProvider{name: "boom", panic: true})
	if err != nil {
		t.Fatal(err)
	}
	flows := oauth.NewFlowManager(oauth.WithLoopbackAddr("127.0.0.1:0"),
		oauth.WithFlowHTTPClient(as.Client()), oauth.WithFlowLogger(logger))
	t.Cleanup(func() { flows.Close() })

	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String() + prefix
	mc := memconnect.Config{
		Registry:     reg,
		Profiles:     provider.HermesProfiles{Root: root},
		Flows:        flows,
		Logger:       logger,
		SessionToken: cfg.sessionToken,
		HTTPClient:   as.Client(),
	}
	if cfg.callback {
		mc.CallbackBaseURL = base
	}
	router, err := memconnect.New(mc)
	if err != nil {
		t.Fatal(err)
	}
	parent := hostRouter(router)
	ts.Config.Handler = parent
	if cfg.wrap != nil {
		ts.Config.Handler = cfg.wrap(parent)
	}
	ts.Start()
	t.Cleanup(ts.Close)

	return &env{t: t, as: as, root: root, flows: flows, logs: logs, parent: parent,
		ts: ts, base: base, client: ts.Client(), token: cfg.sessionToken}
}

// hostRouter is an "existing" web server: its own routes, and memconnect
// mounted at /api/memory.
func hostRouter(memory http.Handler) chi.Router {
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	r.Get("/api/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"hello":"world"}`+"\n")
	})
	r.Mount(prefix, memory)
	return r
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// exchange is one request to the router and its answer.
type exchange struct {
	req    *http.Request // without a body
	status int
	header http.Header
	body   []byte
}

// json decodes the answer's body into a generic map.
func (x exchange) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(x.body, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", x.req.Method, x.req.URL.Path, x.body, err)
	}
	return m
}

// request describes a request for env.do.
type request struct {
	method string
	path   string // relative to /api/memory, or absolute on the host when it starts with "!"
	body   string
	header map[string]string // "Host" sets the Host header
	noAuth bool              // do not send the env's session token
}

// do sends rq to the test server and records the exchange.
func (e *env) do(rq request) exchange {
	e.t.Helper()
	target := e.base + rq.path
	if p, ok := strings.CutPrefix(rq.path, "!"); ok {
		target = e.ts.URL + p
	}
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequest(rq.method, target, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if rq.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.token != "" && !rq.noAuth {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for k, v := range rq.header {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", rq.method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	x := exchange{req: req, status: resp.StatusCode, header: resp.Header, body: b}
	x.req.Body = nil
	e.mu.Lock()
	e.exchange = append(e.exchange, x)
	e.mu.Unlock()
	return x
}

// exchanges returns the exchanges recorded so far.
func (e *env) exchanges() []exchange {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]exchange(nil), e.exchange...)
}

// status GETs the status of profile and provider and decodes it.
func (e *env) status(profile, prov string) provider.StatusReport {
	e.t.Helper()
	x := e.do(request{method: "GET", path: "/profiles/" + profile + "/providers/" + prov + "/status"})
	if x.status != http.StatusOK {
		e.t.Fatalf("status: %d %s", x.status, x.body)
	}
	var rep provider.StatusReport
	if err := json.Unmarshal(x.body, &rep); err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// connect POSTs a connect request and decodes the 202 answer.
func (e *env) connect(profile, prov, body string) provider.StatusReport {
	e.t.Helper()
	x := e.do(request{method: "POST", path: "/profiles/" + profile + "/providers/" + prov + "/connect", body: body})
	if x.status != http.StatusAccepted {
		e.t.Fatalf("connect: %d %s", x.status, x.body)
	}
	var rep provider.StatusReport
	if err := json.Unmarshal(x.body, &rep); err != nil {
		e.t.Fatal(err)
	}
	if rep.Flow == nil {
		e.t.Fatalf("connect: no flow in %s", x.body)
	}
	// A person copies authorize_url from curl's output: "&", never "\u0026".
	if bytes.Contains(x.body, []byte(`\u0026`)) {
		e.t.Errorf("connect answer escapes HTML characters: %s", x.body)
	}
	return rep
}

// readConfig returns the honcho.json at path as a generic map.
func readConfig(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// hostBlock returns hosts[host] of the honcho.json at path.
func hostBlock(t *testing.T, path, host string) map[string]any {
	t.Helper()
	hosts, _ := readConfig(t, path)["hosts"].(map[string]any)
	blk, _ := hosts[host].(map[string]any)
	return blk
}
