package memconnect_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// BenchmarkEventStreams opens N event streams of one profile on one
// instance, over real loopback connections, and measures
//
//   - "B/stream": the server's memory per open stream (heap and stacks in
//     use after the streams are open, less before, over N), with clients
//     that hold their connection and run no goroutine;
//   - "ms/change": the time from another process's commit to the config
//     file (a rotation, written by its own file store) until every one of
//     the N streams has read the event, file watch and debounce included.
//
// Reported, not asserted; BENCHMARKS.md has the numbers.
//
// "floor=N" is the baseline in the same run: a bare TCP server that writes
// one line to each of N connections (a goroutine each) when told, read by
// the same clients. What it costs is the machine's: a loopback write and
// read per stream, and the goroutines' wake-ups.
func BenchmarkEventStreams(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) { benchStreams(b, n) })
		b.Run(fmt.Sprintf("floor=%d", n), func(b *testing.B) { benchFloor(b, n) })
	}
}

// benchFloor is the baseline of benchStreams: no HTTP, no bus, no file.
func benchFloor(b *testing.B, n int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu   sync.Mutex
		next = make(chan struct{}) // closed to make every connection write
		done = make(chan struct{}) // closed to end every connection
	)
	b.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				if err := readUntil(r, "HTTP/1.1"); err != nil {
					return
				}
				// Take the round's channel before the client can see
				// the stream open, and the next one as soon as woken:
				// closing a round's channel and making the next are one
				// step, and no round begins before this one's write.
				mu.Lock()
				ch := next
				mu.Unlock()
				io.WriteString(c, ": memconnect events\n\n")
				for {
					select {
					case <-ch:
					case <-done:
						return
					}
					mu.Lock()
					ch = next
					mu.Unlock()
					if _, err := io.WriteString(c, "data: {\"connection\":\"refreshed\"}\n\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	clients := startStreamClients(b, "http://"+ln.Addr().String(), n)
	b.ResetTimer()
	for range b.N {
		clients.arm(b)
		mu.Lock()
		close(next)
		next = make(chan struct{})
		mu.Unlock()
		clients.wait(b)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/change")
}

// streamClients is the child process that holds the streams.
type streamClients struct {
	stdin io.Writer
	out   *bufio.Reader
}

// startStreamClients opens n streams from a child process (this test
// binary), so that the descriptors and memory measured here are the
// server's alone, and returns once they are open.
func startStreamClients(b *testing.B, base string, n int) *streamClients {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStreamClients$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("MEMCONNECT_STREAM_CLIENTS=%s,%d", base, n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	c := &streamClients{stdin: stdin, out: bufio.NewReader(stdout)}
	if err := readUntil(c.out, "clients: open"); err != nil {
		b.Fatalf("the clients did not open their streams: %v", err)
	}
	return c
}

// arm has every client wait for the next event.
func (c *streamClients) arm(b *testing.B) {
	fmt.Fprintln(c.stdin, "arm")
	if err := readUntil(c.out, "clients: armed"); err != nil {
		b.Fatal(err)
	}
}

// wait returns once every client has read the event.
func (c *streamClients) wait(b *testing.B) {
	if err := readUntil(c.out, "clients: done"); err != nil {
		b.Fatal(err)
	}
}

func benchStreams(b *testing.B, n int) {
	h := fixture.NewHermes(b)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		b.Fatal(err)
	}
	memory, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), HTTPClient: h.AS.Client(),
		MaxEventStreams: n + 10, MaxEventStreamsPerProfile: n + 10, EventHeartbeat: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { memory.Close() })
	srv := httptest.NewServer(fixture.HostRouter(memory))
	b.Cleanup(srv.Close)

	// The other process: its own store over the profile's file.
	loc, err := honcho.New(h.HonchoOptions()...).GrantLocation(provider.Profile{Name: "default", Home: h.Root, DefaultHome: h.Root})
	if err != nil {
		b.Fatal(err)
	}
	other := oauth.NewGrants(filestore.New(filepath.Clean(loc.WritePath), loc.Layout), oauth.WithHTTPClient(h.AS.Client()))
	tok := h.AS.IssueGrant("write")
	if _, err := other.Install(b.Context(), loc.Host, tok, oauth.Grant{ClientID: h.AS.ClientID(), TokenEndpoint: h.AS.TokenURL(), TokenType: "Bearer"}); err != nil {
		b.Fatal(err)
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	clients := startStreamClients(b, srv.URL, n)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perStream := float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse)) / float64(n)

	var total time.Duration
	b.ResetTimer()
	for range b.N {
		clients.arm(b)
		start := time.Now()
		cur, err := other.TokenSource(loc.Host).Token()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := other.TokenSource(loc.Host).ForceRefresh(b.Context(), cur.AccessToken); err != nil {
			b.Fatal(err)
		}
		clients.wait(b)
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/change")
	b.ReportMetric(perStream, "B/stream")
}

// TestStreamClients is the client side of BenchmarkEventStreams, run by it
// in a child process; it skips otherwise. It opens the streams, says
// "clients: open", and for every "arm" on stdin starts a reader per
// stream, says "clients: armed", and says "clients: done" once every
// stream has read a refreshed event.
func TestStreamClients(t *testing.T) {
	t.Parallel()
	spec := os.Getenv("MEMCONNECT_STREAM_CLIENTS")
	if spec == "" {
		t.Skip("run by BenchmarkEventStreams")
	}
	base, count, _ := strings.Cut(spec, ",")
	n, err := strconv.Atoi(count)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(base, "http://")
	readers := make([]*bufio.Reader, n)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s/profiles/default/providers/honcho/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", fixture.Prefix)
		readers[i] = bufio.NewReaderSize(c, 512)
		if err := readUntil(readers[i], ": memconnect events"); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	fmt.Println("clients: open")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var wg sync.WaitGroup
		armed := make(chan struct{}, n)
		for _, r := range readers {
			wg.Go(func() {
				armed <- struct{}{}
				if err := readUntil(r, `"connection":"refreshed"`); err != nil {
					t.Error(err)
				}
			})
		}
		for range n {
			<-armed
		}
		fmt.Println("clients: armed")
		wg.Wait()
		fmt.Println("clients: done")
	}
}

// readUntil reads lines from r until one contains want.
func readUntil(r *bufio.Reader, want string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.Contains(line, want) {
			return nil
		}
	}
}
