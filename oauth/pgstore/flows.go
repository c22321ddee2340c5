package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth/flow"
)

// Flows returns the store's [flow.Store]: the pending sign-in flows of every
// instance, so that a callback is claimed, once, on whichever instance it
// lands. Expired flows are swept as new ones are put.
func (s *Store) Flows() flow.Store { return flows{s} }

type flows struct{ s *Store }

// flowConfig is what of an oauth2.Config a pending flow keeps: no secret.
type flowConfig struct {
	ClientID      string   `json:"client_id"`
	AuthURL       string   `json:"auth_url"`
	TokenURL      string   `json:"token_url"`
	DeviceAuthURL string   `json:"device_auth_url,omitempty"`
	RedirectURL   string   `json:"redirect_url"`
	Scopes        []string `json:"scopes,omitempty"`
}

func flowKey(k flow.Key) string { return k.Profile + "\x00" + k.Provider }

func (f flows) Put(ctx context.Context, p flow.Pending) error {
	cfg, err := json.Marshal(flowConfig{ClientID: p.Config.ClientID, AuthURL: p.Config.Endpoint.AuthURL, TokenURL: p.Config.Endpoint.TokenURL,
		DeviceAuthURL: p.Config.Endpoint.DeviceAuthURL, RedirectURL: p.Config.RedirectURL, Scopes: p.Config.Scopes})
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	batch.Queue(`DELETE FROM memconnect_flows WHERE expires_at < now() - interval '1 hour'`)
	batch.Queue(`
INSERT INTO memconnect_flows (profile, provider, id, state_digest, verifier, config, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (profile, provider) DO UPDATE SET id = $3, state_digest = $4, verifier = $5, config = $6, expires_at = $7`,
		p.Key.Profile, p.Key.Provider, p.ID, digest(p.State), f.s.seal.seal(p.Verifier, aad("flows", flowKey(p.Key), p.ID)), cfg, p.ExpiresAt)
	if err := f.s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("pgstore: keep the pending flow: %w", err)
	}
	return nil
}

// Claim deletes and returns the row in one statement: of two claims of one
// state, on any instances, one gets it.
func (f flows) Claim(ctx context.Context, key flow.Key, state string) (flow.Pending, error) {
	if state == "" {
		return flow.Pending{}, flow.ErrInvalidState
	}
	var (
		id       string
		verifier []byte
		cfg      []byte
		expires  time.Time
	)
	err := f.s.pool.QueryRow(ctx, `
DELETE FROM memconnect_flows WHERE profile = $1 AND provider = $2 AND state_digest = $3
RETURNING id, verifier, config, expires_at`, key.Profile, key.Provider, digest(state)).Scan(&id, &verifier, &cfg, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return flow.Pending{}, flow.ErrInvalidState
	}
	if err != nil {
		return flow.Pending{}, fmt.Errorf("pgstore: claim the pending flow: %w", err)
	}
	v, err := f.s.seal.open(verifier, aad("flows", flowKey(key), id))
	if err != nil {
		return flow.Pending{}, err
	}
	var c flowConfig
	if err := json.Unmarshal(cfg, &c); err != nil {
		return flow.Pending{}, fmt.Errorf("pgstore: the pending flow's config: %w", err)
	}
	return flow.Pending{Key: key, ID: id, State: state, Verifier: v, ExpiresAt: expires, Config: oauth2.Config{
		ClientID:    c.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: c.AuthURL, TokenURL: c.TokenURL, DeviceAuthURL: c.DeviceAuthURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: c.RedirectURL,
		Scopes:      c.Scopes,
	}}, nil
}

func (f flows) Delete(ctx context.Context, key flow.Key, id string) error {
	_, err := f.s.pool.Exec(ctx, `DELETE FROM memconnect_flows WHERE profile = $1 AND provider = $2 AND id = $3`, key.Profile, key.Provider, id)
	return err
}
