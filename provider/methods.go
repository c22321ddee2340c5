package provider

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Methods returns the sign-in methods this Connector offers for p: p's
// methods, without [AuthKey] when the Connector keeps grants in a
// GrantStore that holds no API keys (not an [oauth.KeyStore]).
func (c *Connector) Methods(p Provider) []AuthMethod {
	return c.withoutStoreless(slices.Clone(p.AuthMethods()))
}

// methodsWait bounds how long [Connector.MethodsContext] asks a provider's
// servers.
const methodsWait = 3 * time.Second

// MethodsContext is [Connector.Methods] with what the providers' servers
// announce (a [MethodDiscoverer]): each is asked at most once every few
// minutes, all at once, within ctx and at most a few seconds; a provider
// whose servers do not answer lists the methods known without them.
func (c *Connector) MethodsContext(ctx context.Context, ps []Provider) [][]AuthMethod {
	out := make([][]AuthMethod, len(ps))
	ctx, cancel := context.WithTimeout(ctx, methodsWait)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range ps {
		md, ok := p.(MethodDiscoverer)
		if !ok {
			out[i] = c.Methods(p)
			continue
		}
		wg.Go(func() { out[i] = c.withoutStoreless(md.DiscoverMethods(ctx)) })
	}
	wg.Wait()
	return out
}

// withoutStoreless drops from ms what this Connector cannot offer: API
// keys with a GrantStore that keeps OAuth grants only.
func (c *Connector) withoutStoreless(ms []AuthMethod) []AuthMethod {
	if c.GrantStore != nil && c.storeCaps().Keys == nil {
		ms = slices.DeleteFunc(ms, func(m AuthMethod) bool { return m == AuthKey })
	}
	return ms
}
