package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	memconnect "github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/webhook"
)

// watchOptions are the flags that keep connections healthy and let an
// operator watch them.
type watchOptions struct {
	keepFresh     time.Duration
	webhookURL    string
	webhookSecret string
}

func (w *watchOptions) addFlags(fs *flag.FlagSet) {
	fs.DurationVar(&w.keepFresh, "keep-fresh", 0, "refresh every grant at least this often in the background, and grants in use before they expire (24h is recommended; 0: off)")
	fs.StringVar(&w.webhookURL, "webhook", "", "POST connection events, signed per Standard Webhooks, to this URL (https, or http on a loopback host)")
	fs.StringVar(&w.webhookSecret, "webhook-secret", "", `the webhook signing secret, "whsec_" and base64 (default $MEMCONNECT_WEBHOOK_SECRET)`)
}

// check reports flags that do not go together.
func (w *watchOptions) check(getenv func(string) string) error {
	if w.webhookSecret == "" {
		w.webhookSecret = getenv("MEMCONNECT_WEBHOOK_SECRET")
	}
	switch {
	case w.webhookURL != "" && w.webhookSecret == "":
		return fmt.Errorf("-webhook needs -webhook-secret (or MEMCONNECT_WEBHOOK_SECRET), such as %s", webhook.NewSecret())
	case w.webhookURL == "" && w.webhookSecret != "" && getenv("MEMCONNECT_WEBHOOK_SECRET") == "":
		return errors.New("-webhook-secret needs -webhook URL")
	case w.keepFresh < 0 || (w.keepFresh > 0 && w.keepFresh < time.Minute):
		return fmt.Errorf("-keep-fresh %s: give at least a minute (24h is recommended), or 0 for off", w.keepFresh)
	}
	return nil
}

// startWebhooks sends memory's connection events to the webhook URL until
// the returned stop; without -webhook it does nothing.
func (w *watchOptions) startWebhooks(memory *memconnect.Router, m *metrics, logger zerolog.Logger) (stop func(), err error) {
	if w.webhookURL == "" {
		return func() {}, nil
	}
	s, err := webhook.New(webhook.Config{URL: w.webhookURL, Secret: w.webhookSecret, Logger: logger, Observer: m})
	if err != nil {
		return nil, fmt.Errorf("-webhook: %w", err)
	}
	detach := s.Attach(memory.Events())
	return func() { detach(); s.Close() }, nil
}

// banner tells what runs in the background and where the metrics are.
func (w *watchOptions) banner(out io.Writer, origin string) {
	fmt.Fprintf(out, "metrics: %s/metrics\n", origin)
	if w.keepFresh > 0 {
		fmt.Fprintf(out, "keeping connections fresh: every grant refreshed at least every %s\n", w.keepFresh)
	}
	if w.webhookURL != "" {
		fmt.Fprintf(out, "webhook: connection events POSTed to %s\n", w.webhookURL)
	}
}
