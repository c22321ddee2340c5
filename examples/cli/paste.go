package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/memconnect/memconnect/oauth/flow"
)

// waitOrPaste waits for the sign-in f to end: through the loopback
// listener, if the browser runs on this machine, or by the address the
// browser ended at, pasted here by a person who signed in elsewhere. A
// pasted address completes the flow as the listener would: the state is
// checked, the code exchanged with the verifier. One whose state is not
// this sign-in's is refused and nothing is stored.
func (c *cli) waitOrPaste(ctx context.Context, s *setup, f flow.Flow) (flow.Flow, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		f   flow.Flow
		err error
	}
	waited := make(chan result, 1)
	go func() {
		done, err := s.conn.Wait(ctx, s.profile, s.name)
		waited <- result{done, err}
	}()
	pasted := make(chan result, 1)
	go func() {
		line, err := c.ask(ctx, c.stdout, false, "After signing in, paste the address the browser ended at (or its code and state): ")
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("no address was pasted; run memconnect login --paste again")
			}
			pasted <- result{err: err}
			return
		}
		q, err := pastedAnswer(line, f.RedirectURI)
		if err != nil {
			pasted <- result{err: err}
			return
		}
		done, err := s.conn.Callback(ctx, s.profile, s.name, q)
		if errors.Is(err, flow.ErrInvalidState) {
			err = errors.New("that address is not where this sign-in ended (its state is not this sign-in's), so nothing was stored; run memconnect login --paste again")
		}
		pasted <- result{done, err}
	}()
	select {
	case r := <-waited:
		return r.f, r.err
	case r := <-pasted:
		if r.err != nil && ctx.Err() == nil {
			select { // the listener may have won the race meanwhile
			case w := <-waited:
				if w.err == nil && w.f.State == flow.StateConnected {
					return w.f, nil
				}
			default:
			}
		}
		return r.f, r.err
	}
}

// pastedAnswer reads the authorization response a person pasted: the
// whole address the browser ended at (the redirect URI with its query), the
// query alone ("code=...&state=..."), or the code and the state separated
// by a space.
func pastedAnswer(line, redirectURI string) (url.Values, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, errors.New("nothing was pasted; run memconnect login --paste again")
	}
	if fields := strings.Fields(line); len(fields) == 2 && !strings.ContainsAny(line, "=?&") {
		return url.Values{"code": {fields[0]}, "state": {fields[1]}}, nil
	}
	raw := line
	if u, err := url.Parse(line); err == nil && u.Scheme != "" {
		if !strings.HasPrefix(line, strings.TrimSuffix(redirectURI, "/callback")) && !strings.Contains(u.Path, "/callback") {
			return nil, fmt.Errorf("the pasted address is not this sign-in's redirect (%s...); paste the address the browser ended at", redirectURI)
		}
		raw = u.RawQuery
	}
	q, err := url.ParseQuery(strings.TrimPrefix(raw, "?"))
	if err != nil || (q.Get("code") == "" && q.Get("error") == "") || q.Get("state") == "" {
		return nil, errors.New("the pasted text holds no code and state; paste the whole address the browser ended at")
	}
	return q, nil
}
