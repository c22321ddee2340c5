package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/oauth/flow"
)

// Flows returns the store's [flow.Store]: the pending sign-in flows of every
// instance, so that a callback is claimed, once, on whichever instance it
// lands, and every instance reports and cancels every flow. Rows of flows
// long expired are swept as new ones are put.
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
	// TokenParams are the code exchange's extra parameters (RFC 8707
	// resource): no secret.
	TokenParams map[string][]string `json:"token_params,omitempty"`
	// Issuer and IssuerRequired check the authorization response's iss
	// (RFC 9207).
	Issuer         string `json:"issuer,omitempty"`
	IssuerRequired bool   `json:"issuer_required,omitempty"`
	// Binding is the digest of the starting browser's nonce: no secret.
	Binding string `json:"binding,omitempty"`
	// ResumeData is the starting request's options for the instance that
	// completes the flow (flow.Request.ResumeData): no secret.
	ResumeData []byte `json:"resume_data,omitempty"`
}

func flowKey(k connid.ID) string { return k.Profile + "\x00" + k.Provider }

func (f flows) Put(ctx context.Context, p flow.Pending) error {
	cfg, err := json.Marshal(flowConfig{ClientID: p.Config.ClientID, AuthURL: p.Config.Endpoint.AuthURL, TokenURL: p.Config.Endpoint.TokenURL,
		DeviceAuthURL: p.Config.Endpoint.DeviceAuthURL, RedirectURL: p.Config.RedirectURL, Scopes: p.Config.Scopes, TokenParams: p.TokenParams,
		Issuer: p.Issuer, IssuerRequired: p.IssuerRequired, Binding: p.Binding, ResumeData: p.ResumeData})
	if err != nil {
		return err
	}
	snap, err := json.Marshal(f.newFlowJSON(p.Key, p.Flow))
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	batch.Queue(`DELETE FROM memconnect_flows WHERE expires_at < now() - interval '1 hour'`)
	batch.Queue(`
INSERT INTO memconnect_flows (profile, provider, id, phase, state_digest, verifier, config, flow, expires_at)
VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8)
ON CONFLICT (profile, provider) DO UPDATE SET id = $3, phase = 'pending', state_digest = $4, verifier = $5, config = $6, flow = $7, expires_at = $8`,
		p.Key.Profile, p.Key.Provider, p.ID, digest(p.State), f.s.seal.seal(p.Verifier, aad("flows", flowKey(p.Key), p.ID)), cfg, snap, p.ExpiresAt)
	if err := f.s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("pgstore: keep the pending flow: %w", err)
	}
	return nil
}

// Claim deletes and returns the row in one statement: of two claims of one
// state, on any instances, one gets it.
func (f flows) Claim(ctx context.Context, key connid.ID, state string) (flow.Pending, error) {
	if state == "" {
		return flow.Pending{}, flow.ErrInvalidState
	}
	var (
		id       string
		verifier []byte
		cfg      []byte
		snap     []byte
		expires  time.Time
	)
	// One statement: the row's secrets are read and cleared at once.
	err := f.s.pool.QueryRow(ctx, `
UPDATE memconnect_flows AS n SET phase = 'claimed', state_digest = NULL, verifier = NULL
FROM memconnect_flows AS o
WHERE n.profile = $1 AND n.provider = $2 AND n.phase = 'pending' AND n.state_digest = $3
	AND o.profile = n.profile AND o.provider = n.provider
RETURNING o.id, o.verifier, o.config, o.flow, o.expires_at`, key.Profile, key.Provider, digest(state)).Scan(&id, &verifier, &cfg, &snap, &expires)
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
	var fj flowJSON
	if err := json.Unmarshal(snap, &fj); err != nil {
		return flow.Pending{}, fmt.Errorf("pgstore: the pending flow: %w", err)
	}
	return flow.Pending{Key: key, ID: id, State: state, Verifier: v, ExpiresAt: expires, Flow: f.flow(key, fj), TokenParams: c.TokenParams,
		Issuer: c.Issuer, IssuerRequired: c.IssuerRequired, Binding: c.Binding, ResumeData: c.ResumeData, Config: oauth2.Config{
			ClientID:    c.ClientID,
			Endpoint:    oauth2.Endpoint{AuthURL: c.AuthURL, TokenURL: c.TokenURL, DeviceAuthURL: c.DeviceAuthURL, AuthStyle: oauth2.AuthStyleInParams},
			RedirectURL: c.RedirectURL,
			Scopes:      c.Scopes,
		}}, nil
}

func (f flows) Finish(ctx context.Context, key connid.ID, id string, fl flow.Flow) (bool, error) {
	snap, err := json.Marshal(f.newFlowJSON(key, fl))
	if err != nil {
		return false, err
	}
	phases := []string{"pending", "claimed"}
	if fl.State == flow.StateIdle {
		phases = phases[:1] // a claimed flow is being completed: too late to cancel
	}
	tag, err := f.s.pool.Exec(ctx, `
UPDATE memconnect_flows SET phase = 'ended', state_digest = NULL, verifier = NULL, flow = $4
WHERE profile = $1 AND provider = $2 AND ($3 = '' OR id = $3) AND phase = ANY($5)`, key.Profile, key.Provider, id, snap, phases)
	if err != nil {
		return false, fmt.Errorf("pgstore: record the end of a flow: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func (f flows) Status(ctx context.Context, key connid.ID) (flow.Flow, bool, error) {
	snap, err := retryRead(ctx, func() ([]byte, error) {
		var snap []byte
		err := f.s.pool.QueryRow(ctx, `SELECT flow FROM memconnect_flows WHERE profile = $1 AND provider = $2`, key.Profile, key.Provider).Scan(&snap)
		return snap, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return flow.Flow{}, false, nil
	}
	if err != nil {
		return flow.Flow{}, false, fmt.Errorf("pgstore: read a flow: %w", err)
	}
	var fj flowJSON
	if err := json.Unmarshal(snap, &fj); err != nil {
		return flow.Flow{}, false, fmt.Errorf("pgstore: read a flow: %w", err)
	}
	return f.flow(key, fj), true, nil
}

// flowJSON is a flow.Flow as the flow column keeps it. The authorize URL
// holds the OAuth state, so it is kept sealed, never in the clear.
type flowJSON struct {
	ID              string    `json:"id"`
	State           string    `json:"state"`
	Method          string    `json:"method"`
	Detail          string    `json:"detail,omitempty"`
	AuthorizeURL    string    `json:"authorize_url,omitempty"` // in rows of earlier versions only
	SealedURL       []byte    `json:"authorize_url_sealed,omitempty"`
	RedirectURI     string    `json:"redirect_uri,omitempty"`
	UserCode        string    `json:"user_code,omitempty"`
	VerificationURI string    `json:"verification_uri,omitempty"`
	ExpiresAt       time.Time `json:"expires_at"`
}

// urlAAD binds a flow's sealed authorize URL to its row and flow.
func urlAAD(key connid.ID, id string) string { return aad("flows", flowKey(key), id+"/authorize_url") }

func (f flows) newFlowJSON(key connid.ID, fl flow.Flow) flowJSON {
	j := flowJSON{ID: fl.ID, State: string(fl.State), Method: string(fl.Method), Detail: fl.Detail,
		RedirectURI: fl.RedirectURI, UserCode: fl.UserCode, VerificationURI: fl.VerificationURI, ExpiresAt: fl.ExpiresAt}
	if fl.AuthorizeURL != "" {
		j.SealedURL = f.s.seal.seal(fl.AuthorizeURL, urlAAD(key, fl.ID))
	}
	return j
}

func (f flows) flow(key connid.ID, j flowJSON) flow.Flow {
	fl := flow.Flow{ID: j.ID, State: flow.State(j.State), Method: flow.Method(j.Method), Detail: j.Detail, AuthorizeURL: j.AuthorizeURL,
		RedirectURI: j.RedirectURI, UserCode: j.UserCode, VerificationURI: j.VerificationURI, ExpiresAt: j.ExpiresAt}
	if len(j.SealedURL) > 0 {
		// A URL sealed with a key since removed (Rekey leaves the URLs of
		// flows, which live ten minutes) is left out: it is not needed to
		// complete the flow, only to show it again.
		fl.AuthorizeURL, _ = f.s.seal.open(j.SealedURL, urlAAD(key, j.ID))
	}
	return fl
}

func (f flows) Delete(ctx context.Context, key connid.ID, id string) error {
	_, err := f.s.pool.Exec(ctx, `DELETE FROM memconnect_flows WHERE profile = $1 AND provider = $2 AND id = $3`, key.Profile, key.Provider, id)
	return err
}
