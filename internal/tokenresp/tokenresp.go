// Package tokenresp reads token endpoint responses (RFC 6749 section 5.1)
// below golang.org/x/oauth2, so that a successful answer is never thrown
// away.
//
// x/oauth2 refuses a 2xx answer whose expires_in it cannot parse (a
// fraction such as 3600.5, or a string), and returns an error. For a
// refresh that error is fatal: the server has rotated the refresh token,
// and dropping its answer means replaying the spent token later, which
// revokes the grant. [Capture] keeps the raw body of every answer that
// passes through a client, and [Parse] reads it leniently.
package tokenresp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/outbound"
	"github.com/memconnect/memconnect/internal/wire"
)

// MaxBody bounds a token response body; a larger one is cut there.
const MaxBody = 1 << 20

// DefaultLifetime is the access token lifetime assumed when a response
// names none, or none that can be read.
const DefaultLifetime = time.Hour

// Capture is an [http.RoundTripper] that reads each response body whole,
// keeps the last successful (2xx) one, calls OnSuccess with it before the
// caller sees any of it, and hands the caller an identical body.
//
// Capture is safe for concurrent use.
type Capture struct {
	// Base is the underlying transport; nil means [http.DefaultTransport].
	Base http.RoundTripper
	// OnSuccess, if not nil, is called with every 2xx body and its
	// Content-Type, in the goroutine of the request, before the body is
	// returned: the first moment the answer is known.
	OnSuccess func(body []byte, contentType string)
	// Params, if not empty, are added to the form body of every request:
	// parameters x/oauth2 cannot send itself, such as a refresh's RFC 8707
	// "resource".
	Params url.Values

	mu   sync.Mutex // guards last
	last *Response
}

// Response is a captured 2xx answer.
type Response struct {
	Body        []byte
	ContentType string
	Received    time.Time
}

// Client returns a client like c (nil: [http.DefaultClient]) whose
// transport is cp over c's, and which follows no redirect: a token
// request carries a secret (a code and its verifier, a refresh token).
func (cp *Capture) Client(c *http.Client) *http.Client {
	cc := outbound.Secret(c)
	cp.Base = cc.Transport
	cc.Transport = cp
	return cc
}

// RoundTrip implements [http.RoundTripper].
func (cp *Capture) RoundTrip(req *http.Request) (*http.Response, error) {
	base := cp.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if len(cp.Params) > 0 && req.Body != nil {
		var err error
		if req, err = withParams(req, cp.Params); err != nil {
			return nil, err
		}
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // x/oauth2 reports the short body
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		ct := resp.Header.Get("Content-Type")
		if cp.OnSuccess != nil {
			cp.OnSuccess(body, ct)
		}
		cp.mu.Lock()
		cp.last = &Response{Body: body, ContentType: ct, Received: time.Now()}
		cp.mu.Unlock()
	}
	return resp, nil
}

// withParams returns a copy of the form request req with params added to
// its body.
func withParams(req *http.Request, params url.Values) (*http.Request, error) {
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, fmt.Errorf("tokenresp: the request body is not a form: %w", err)
	}
	for k, vs := range params {
		form[k] = append(form[k], vs...)
	}
	body := []byte(form.Encode())
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return r, nil
}

// Last returns the last 2xx answer, or nil.
func (cp *Capture) Last() *Response {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.last
}

// ErrNoAccessToken reports a 2xx body without an access token: not a token
// response.
var ErrNoAccessToken = errors.New("token response has no access_token")

// Parse reads a successful token response body: JSON, or form-encoded as
// some servers send it. now stamps the expiry. Unlike x/oauth2 it accepts
// any expires_in it can read as a number of seconds (3600, 3600.5, "3600",
// a negative one for a token that is already expired); one it cannot read
// gives [DefaultLifetime] and odd reports what was wrong, for a warning.
// Every member of a JSON body is also in the token's Extra.
func Parse(body []byte, contentType string, now time.Time) (tok *oauth2.Token, odd string, err error) {
	fields := map[string]any{}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" || mt == "text/plain" {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, "", fmt.Errorf("token response is not form-encoded: %w", err)
		}
		for k := range vals {
			fields[k] = vals.Get(k)
		}
		if v := vals.Get("expires_in"); v != "" {
			fields["expires_in"] = json.Number(v) // a form has no numbers
		}
	} else {
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		if err := d.Decode(&fields); err != nil {
			return nil, "", fmt.Errorf("token response is not a JSON object: %w", err)
		}
	}
	str := func(k string) string { s, _ := fields[k].(string); return s }
	tok = &oauth2.Token{
		AccessToken:  str("access_token"),
		TokenType:    str("token_type"),
		RefreshToken: str("refresh_token"),
	}
	if tok.AccessToken == "" {
		return nil, "", ErrNoAccessToken
	}
	secs, odd, ok := seconds(fields["expires_in"])
	if !ok {
		secs = int64(DefaultLifetime / time.Second)
	}
	tok.ExpiresIn = secs
	tok.Expiry = now.Add(time.Duration(secs) * time.Second)
	return tok.WithExtra(fields), odd, nil
}

// seconds reads expires_in: a JSON number or a string holding one, rounded
// down to whole seconds. ok is false when there is none that can be used;
// odd says what was unusual about a value that is not a whole JSON number.
func seconds(v any) (secs int64, odd string, ok bool) {
	var f float64
	var err error
	switch x := v.(type) {
	case nil:
		return 0, "", false
	case json.Number:
		f, err = x.Float64()
		if err == nil && f != math.Floor(f) {
			odd = "expires_in " + x.String() + " is not whole seconds; rounded down"
		}
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
		odd = "expires_in is a string"
	default:
		return 0, fmt.Sprintf("expires_in is a JSON %s, not a number; assumed %s", jsonKind(v), DefaultLifetime), false
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 100*365*24*3600 {
		return 0, "expires_in is not a number of seconds; assumed " + DefaultLifetime.String(), false
	}
	return int64(math.Floor(f)), odd, true
}

func jsonKind(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "value"
}

// Redact takes out of s a token endpoint's answer (body, as it came) and
// the tokens in it, for a message that may quote it.
func Redact(s string, body []byte, contentType string) string {
	if len(body) > 0 {
		s = strings.ReplaceAll(s, string(body), "[answer]")
	}
	if tok, _, err := Parse(body, contentType, time.Now()); err == nil {
		s = wire.Redact(s, tok.AccessToken, tok.RefreshToken)
	}
	return s
}
