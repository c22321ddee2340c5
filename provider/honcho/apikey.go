package honcho

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/memconnect/memconnect/internal/outbound"
	"github.com/memconnect/memconnect/provider"
)

var _ provider.KeyChecker = (*Provider)(nil)

// WithAPIKeyCheckURL sets an endpoint of the Honcho API that answers an
// authenticated GET, so that [Provider.CheckAPIKey] can ask it whether a
// key is valid before it is stored; client, when not nil, makes the
// request. Without this option keys are stored unchecked.
func WithAPIKeyCheckURL(u string, client *http.Client) Option {
	return func(p *Provider) { p.keyCheckURL, p.keyCheckClient = u, client }
}

// CheckAPIKey implements [provider.KeyChecker]: with a check URL
// ([WithAPIKeyCheckURL]) it sends one GET with the key as a Bearer token.
// 401 or 403 is a rejection (a [*provider.APIKeyError]); any other
// answer but 2xx, or none, is an error that says the key could not be
// checked. Without a check URL every key passes.
func (p *Provider) CheckAPIKey(ctx context.Context, _ provider.Profile, key string) error {
	if p.keyCheckURL == "" {
		return nil
	}
	ctx, cancel := outbound.Step(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.keyCheckURL, nil)
	if err != nil {
		return fmt.Errorf("honcho: API key check URL %q: %w", p.keyCheckURL, err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := outbound.Secret(p.keyCheckClient).Do(req) // the key goes to the check URL only
	if err != nil {
		return fmt.Errorf("honcho: the API key could not be checked at %s: %w", p.keyCheckURL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return &provider.APIKeyError{Reason: fmt.Sprintf("Honcho refused the key (HTTP %d); copy it again from the Honcho dashboard", resp.StatusCode)}
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("honcho: the API key could not be checked: %s answered %s", p.keyCheckURL, resp.Status)
	}
	return nil
}
