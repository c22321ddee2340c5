package provider

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/oauth"
)

// followDebounce gathers the file events of one write (a temp file, a
// rename, a directory sync) into one look at the status. A look taken
// before the rename sees the old file and changes nothing; the rename's
// own event brings another.
const followDebounce = 10 * time.Millisecond

// echoWindow: a change this Connector published itself is not published
// again when its write to the file is seen within this time.
const echoWindow = 2 * time.Second

// follower watches the config files of one profile and provider.
type follower struct {
	refs  int
	stop  chan struct{}
	done  chan struct{}
	poke  chan struct{} // a file of the follower changed (buffered 1)
	files []string      // the files it watches, cleaned
}

// dirWatch is the one file watch of a Connector: every follower's
// directories are added to it once, and each file event is handed to the
// followers of that file.
type dirWatch struct {
	mu    sync.Mutex
	w     *fsnotify.Watcher // nil until the first follower
	dirs  map[string]int    // watched directories, by followers using them
	files map[string]map[*follower]struct{}
}

// add registers f for its files, watching their directories.
func (d *dirWatch) add(f *follower) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return err
		}
		d.w, d.dirs, d.files = w, make(map[string]int), make(map[string]map[*follower]struct{})
		go d.dispatch(w)
	}
	var added []string
	for _, p := range f.files {
		dir := filepath.Dir(p)
		if d.dirs[dir] == 0 {
			// The directory: a write replaces the file by a rename.
			if err := d.w.Add(dir); err != nil {
				for _, a := range added {
					d.releaseDirLocked(a)
				}
				return err
			}
		}
		d.dirs[dir]++
		added = append(added, dir)
	}
	for _, p := range f.files {
		if d.files[p] == nil {
			d.files[p] = make(map[*follower]struct{})
		}
		d.files[p][f] = struct{}{}
	}
	return nil
}

// remove undoes add; the watch itself ends with its last follower.
func (d *dirWatch) remove(f *follower) {
	d.mu.Lock()
	for _, p := range f.files {
		delete(d.files[p], f)
		if len(d.files[p]) == 0 {
			delete(d.files, p)
		}
		d.releaseDirLocked(filepath.Dir(p))
	}
	var idle *fsnotify.Watcher
	if len(d.dirs) == 0 {
		idle, d.w = d.w, nil
	}
	d.mu.Unlock()
	if idle != nil {
		idle.Close() // not under d.mu: dispatch may be waiting for it
	}
}

func (d *dirWatch) releaseDirLocked(dir string) {
	if d.dirs[dir]--; d.dirs[dir] <= 0 {
		delete(d.dirs, dir)
		_ = d.w.Remove(dir) // gone with the directory, perhaps
	}
}

// dispatch hands each event of w to the followers of its file, without
// blocking: a follower already poked looks at the file anyway.
func (d *dirWatch) dispatch(w *fsnotify.Watcher) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			d.mu.Lock()
			for f := range d.files[filepath.Clean(ev.Name)] {
				select {
				case f.poke <- struct{}{}:
				default:
				}
			}
			d.mu.Unlock()
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
		}
	}
}

// Follow publishes to c.Events the changes that other processes (the CLI,
// the Python agent, another server) make to the connection of the profile
// with the provider: it watches the config files the grant is read from
// and written to, and on every change compares the status with the one
// before, publishing connected, refreshed, reauth_required or
// disconnected. With a GrantStore that can watch its grants (a
// [oauth.GrantWatcher], such as pgstore's, over PostgreSQL's LISTEN/NOTIFY) it
// follows the changes every instance commits instead. Calls for the same
// profile and provider share one watch; stop ends the caller's share.
// Without Events, or with a GrantStore that cannot watch, Follow watches
// nothing (stop does nothing). ctx bounds setting the watch up (a
// PostgreSQL store may wait for its connection); the first status read
// keeps ctx's values but not its end, since the streams to come share it.
func (c *Connector) Follow(ctx context.Context, profileName, providerName string) (stop func(), err error) {
	noop := func() {}
	if c.Events == nil {
		return noop, nil
	}
	gw := c.storeCaps().Watch
	if c.GrantStore != nil && gw == nil {
		return noop, nil
	}
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return nil, err
	}
	if len(t.provider.AuthMethods()) == 0 {
		return noop, nil
	}
	loc, err := t.provider.GrantLocation(t.profile)
	if err != nil {
		return nil, err
	}
	c.followMu.Lock()
	defer c.followMu.Unlock()
	if c.followers == nil {
		c.followers = make(map[connid.ID]*follower)
	}
	f := c.followers[t.key]
	if f == nil && gw != nil {
		// Bounded: the lock is held, and Watch may wait for a connection.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		changed, stopWatch, err := gw.Watch(wctx, t.key.String())
		cancel()
		if err != nil {
			return nil, err
		}
		f = &follower{stop: make(chan struct{}), done: make(chan struct{})}
		c.followers[t.key] = f
		// The status to compare with is taken once the watch is on and
		// before Follow returns, so that no change after it is missed.
		last, _ := c.snapshot(context.WithoutCancel(ctx), t) // shared by the streams to come
		go c.followStore(t, changed, stopWatch, f, last)
	}
	if f == nil {
		f = &follower{stop: make(chan struct{}), done: make(chan struct{}), poke: make(chan struct{}, 1)}
		for _, p := range []string{loc.ReadPath, loc.WritePath} {
			if p != "" && !slices.Contains(f.files, filepath.Clean(p)) {
				f.files = append(f.files, filepath.Clean(p))
			}
		}
		if err := c.watch.add(f); err != nil {
			return nil, err
		}
		c.followers[t.key] = f
		last, _ := c.snapshot(context.WithoutCancel(ctx), t) // shared by the streams to come
		go c.follow(t, f, last)
	}
	f.refs++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.followMu.Lock()
			f.refs--
			last := f.refs == 0
			if last {
				delete(c.followers, t.key)
			}
			c.followMu.Unlock()
			if last {
				close(f.stop)
				<-f.done
			}
		})
	}, nil
}

// snapshot is what Follow compares of two statuses.
type snapshot struct {
	connected, reauth bool
	auth              string
	grant             [sha256.Size]byte // of the refresh token: a rotation changes it
	// rotatedHere, rejectedHere: grant came from a rotation of this
	// Connector's, or a refresh of its found grant rejected; its refresh
	// report publishes that, whether or not the report came first.
	rotatedHere, rejectedHere bool
}

// snapshot reads t's status as a follower compares it, within 5 s of ctx.
// The status and the grant are two reads: when a change falls between
// them (a disconnect after the status said connected), they are read
// again, a few times, rather than the missing grant taken at once for a
// rotation.
func (c *Connector) snapshot(ctx context.Context, t target) (snapshot, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var s snapshot
	for range 3 {
		var settled, ok bool
		if s, settled, ok = c.readSnapshot(ctx, t); !ok || settled {
			return s, ok
		}
	}
	return s, true
}

// readSnapshot is one read of [Connector.snapshot]; settled is false when
// the status says an OAuth connection and the grant read after it found
// none.
func (c *Connector) readSnapshot(ctx context.Context, t target) (s snapshot, settled, ok bool) {
	rep, err := c.report(ctx, t)
	if err != nil {
		return snapshot{}, false, false
	}
	s = snapshot{connected: rep.Connected, reauth: rep.ReauthRequired, auth: rep.Auth}
	ref, err := c.where(t, false)
	if err != nil {
		return s, true, true
	}
	var store oauth.GrantStore = c.GrantStore
	if ref.file != nil {
		store = ref.file
	}
	if store == nil {
		return s, true, true
	}
	cr, err := store.Credentials(ctx, ref.key)
	if err != nil {
		return snapshot{}, false, false
	}
	if cr.Grant == nil {
		return s, !(rep.Connected && rep.Auth == AuthOAuth), true
	}
	s.grant = sha256.Sum256([]byte(cr.Grant.RefreshToken))
	s.rotatedHere = ref.grants.RotatedHere(ref.key, s.grant)
	s.rejectedHere = ref.grants.RejectedHere(ref.key, s.grant)
	return s, true, true
}

// follow is the watch of f's files, until f.stop.
func (c *Connector) follow(t target, f *follower, last snapshot) {
	defer close(f.done)
	defer c.watch.remove(f)
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-f.poke:
			settle.Reset(followDebounce)
		case <-settle.C:
			c.publishChanges(t, &last)
		}
	}
}

// followStore is the watch of f over a oauth.GrantWatcher, until f.stop.
func (c *Connector) followStore(t target, changed <-chan struct{}, stopWatch func(), f *follower, last snapshot) {
	defer close(f.done)
	defer stopWatch()
	for {
		select {
		case <-f.stop:
			return
		case <-changed:
			c.publishChanges(t, &last)
		}
	}
}

// publishChanges publishes what changed since *last, and keeps the new
// status in *last.
func (c *Connector) publishChanges(t target, last *snapshot) {
	now, ok := c.snapshot(context.Background(), t) // the follower's own, past any request
	if !ok {
		return // a file being replaced, or not valid yet: the next change tells
	}
	for _, what := range changes(*last, now) {
		if !c.echo(t.key, what) {
			c.Events.Publish(events.Event{Key: t.key, Kind: events.KindConnection, Connection: what, Remote: true})
		}
	}
	*last = now
}

// changes are the connection events that lead from a to b.
func changes(a, b snapshot) []string {
	var out []string
	switch {
	case !a.connected && b.connected:
		out = append(out, events.Connected)
	case a.connected && !b.connected:
		out = append(out, events.Disconnected)
	case a.reauth && !b.reauth && b.connected:
		out = append(out, events.Connected) // signed in again
	case a.connected && b.connected && b.auth == AuthOAuth && b.grant != a.grant && !b.rotatedHere:
		out = append(out, events.Refreshed)
	}
	if b.reauth && !a.reauth && !b.rejectedHere {
		out = append(out, events.ReauthRequired)
	}
	return out
}

// echo reports whether this Connector published what for key itself, or
// expects to publish it after a write of its own, within echoWindow, so
// that its own write is not published twice.
func (c *Connector) echo(key connid.ID, what string) bool {
	c.followMu.Lock()
	defer c.followMu.Unlock()
	return slices.ContainsFunc(c.published[key], func(p *publishedEvent) bool {
		return p.what == what && time.Since(p.at) < echoWindow
	})
}
