package websocket

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connPair returns a server Conn and a client Conn joined by loopback TCP,
// skipping the HTTP handshake (newConn directly), for benchmarks and
// allocation counts of the message path alone.
func connPair(tb testing.TB) (server, client *Conn) {
	tb.Helper()
	return connPairConfig(tb, connConfig{}, connConfig{})
}

// connPairConfig is connPair with the configurations given to newConn
// (isServer is set on the server's).
func connPairConfig(tb testing.TB, serverCfg, clientCfg connConfig) (server, client *Conn) {
	tb.Helper()
	cc, sc := loopback(tb)
	serverCfg.isServer = true
	server = newConn(sc, nil, serverCfg)
	client = newConn(cc, nil, clientCfg)
	tb.Cleanup(func() {
		server.CloseNow()
		client.CloseNow()
	})
	return server, client
}

// Steady state: writing a message and reading one into a reused buffer
// allocate nothing, on both sides, with a context that can never end and
// with one that can (as r.Context() on a server) used for every call.
func TestSteadyStateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	server, client := connPair(t)
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	msg := testPayload(1024, true)
	buf := make([]byte, 0, 4096)
	for _, ctx := range []struct {
		name string
		ctx  context.Context
	}{{"background", context.Background()}, {"cancellable", cancellable}} {
		for _, dir := range []struct {
			name     string
			from, to *Conn
		}{{"client to server", client, server}, {"server to client", server, client}} {
			roundTrip := func() {
				if err := dir.from.Write(ctx.ctx, MessageText, msg); err != nil {
					t.Fatal(err)
				}
				if _, _, err := dir.to.AppendMessage(ctx.ctx, buf[:0]); err != nil {
					t.Fatal(err)
				}
			}
			roundTrip() // warm the pools
			if n := testing.AllocsPerRun(200, roundTrip); n != 0 {
				t.Errorf("%s, %s context: %v allocations per 1 KiB message", dir.name, ctx.name, n)
			}
		}
	}
}

// Control frames read between messages are handled without allocating:
// a ping answered by the reader, a pong handed to no Ping, both sides.
func TestControlFrameAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	server, client := connPair(t)
	ctx := context.Background()
	msg := testPayload(16, false)
	payload := testPayload(125, false)
	buf := make([]byte, 0, 64)
	for _, op := range []Opcode{OpPing, OpPong} {
		for _, dir := range []struct {
			name     string
			from, to *Conn
		}{{"client to server", client, server}, {"server to client", server, client}} {
			roundTrip := func() {
				if err := dir.from.writeFrame(ctx, Header{Fin: true, Opcode: op}, payload); err != nil {
					t.Fatal(err)
				}
				if err := dir.from.Write(ctx, MessageBinary, msg); err != nil {
					t.Fatal(err)
				}
				if _, _, err := dir.to.AppendMessage(ctx, buf[:0]); err != nil {
					t.Fatal(err)
				}
			}
			roundTrip() // warm the pools
			if n := testing.AllocsPerRun(100, roundTrip); n != 0 {
				t.Errorf("%v, %s: %v allocations per control frame and message", op, dir.name, n)
			}
		}
	}
}

// BenchmarkReadLargeMessage: Read, which makes a new buffer for every
// message, of large messages from the client (see growMessage).
func BenchmarkReadLargeMessage(b *testing.B) {
	for _, size := range []int{1 << 20, 16 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			server, client := connPair(b)
			server.SetReadLimit(int64(size))
			benchmarkMessagesRead(b, client, size, func(ctx context.Context) error {
				_, _, err := server.Read(ctx)
				return err
			})
		})
	}
}

// benchmarkMessages writes messages of size from one Conn and reads them
// with the other into a reused buffer.
func benchmarkMessages(b *testing.B, from, to *Conn, size int) {
	buf := make([]byte, 0, size)
	b.ReportAllocs()
	benchmarkMessagesRead(b, from, size, func(ctx context.Context) error {
		_, _, err := to.AppendMessage(ctx, buf[:0])
		return err
	})
}

// benchmarkMessagesRead writes b.N messages of size from one Conn while
// read takes them at the other end.
func benchmarkMessagesRead(b *testing.B, from *Conn, size int, read func(context.Context) error) {
	ctx := context.Background()
	msg := testPayload(size, false)
	b.SetBytes(int64(size))
	done := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if err := from.Write(ctx, MessageBinary, msg); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < b.N; i++ {
		if err := read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkClientToServer: the client masks, the server unmasks.
func BenchmarkClientToServer(b *testing.B) {
	for _, size := range []int{16, 1 << 10, 64 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			server, client := connPair(b)
			server.SetReadLimit(2 << 20)
			benchmarkMessages(b, client, server, size)
		})
	}
}

// BenchmarkServerToClient: no masking. A frame of up to 16 KiB is copied
// into a pooled write buffer and written in one call, a larger one goes out
// as header and payload in one writev, and from 512 KiB its first 4 KiB go
// out on their own (writeFrameLocked), which the 1 MiB figure shows.
func BenchmarkServerToClient(b *testing.B) {
	for _, size := range []int{16, 1 << 10, 64 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			server, client := connPair(b)
			client.SetReadLimit(2 << 20)
			benchmarkMessages(b, server, client, size)
		})
	}
}

// BenchmarkParseHeader decodes a masked 16-bit-length header.
func BenchmarkParseHeader(b *testing.B) {
	wire := AppendHeader(nil, Header{Fin: true, Opcode: OpBinary, Masked: true, Length: 1024})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseHeader(wire); err != nil {
			b.Fatal(err)
		}
	}
}

// replayConn is a net.Conn whose every Read returns the same frame and whose
// writes go nowhere: with it, a benchmark times ws13's own work on a
// message, without the system calls that dominate a real round trip.
// Unlike scriptedConn (fuzz_test.go) it keeps nothing written, so that the
// benchmark's allocations are ws13's alone.
type replayConn struct {
	net.Conn // nil: only Read, Write and the deadlines are used
	frame    []byte
}

func (c *replayConn) Read(p []byte) (int, error)       { return copy(p, c.frame), nil }
func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkEchoOverhead is a server's CPU time to read one masked message
// into a reused buffer and write it back, the network left out.
func BenchmarkEchoOverhead(b *testing.B) {
	for _, size := range []int{16, 1 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			h := Header{Fin: true, Opcode: OpBinary, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: int64(size)}
			frame := append(AppendHeader(nil, h), testPayload(size, false)...)
			server := newConn(&replayConn{frame: frame}, nil, connConfig{isServer: true})
			ctx := context.Background()
			buf := make([]byte, 0, size)
			b.ReportAllocs()
			for b.Loop() {
				typ, msg, err := server.AppendMessage(ctx, buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				if err := server.Write(ctx, typ, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEchoOverheadManyConns is BenchmarkEchoOverhead/1KiB over many
// connections in turn, each echoing one message before the next: what a
// server's own work costs once a connection's state is no longer in the
// CPU's cache. With "cold", 100,000 Conns, far more than the caches hold;
// with "two cores", 1,000 Conns handed back and forth between two
// goroutines that each keep a core busy, so that what one message writes
// of a Conn is in the other core's cache when the next message comes.
func BenchmarkEchoOverheadManyConns(b *testing.B) {
	const size = 1 << 10
	h := Header{Fin: true, Opcode: OpBinary, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: size}
	frame := append(AppendHeader(nil, h), testPayload(size, false)...)
	newConns := func(n int) []*Conn {
		conns := make([]*Conn, n)
		for i := range conns {
			conns[i] = newConn(&replayConn{frame: frame}, nil, connConfig{isServer: true})
		}
		return conns
	}
	echo := func(c *Conn, buf []byte) {
		typ, msg, err := c.AppendMessage(context.Background(), buf[:0])
		if err == nil {
			err = c.Write(context.Background(), typ, msg)
		}
		if err != nil {
			panic(err) // b.Fatal may not be called off the benchmark's goroutine
		}
	}
	b.Run("cold", func(b *testing.B) {
		conns := newConns(100_000)
		buf := make([]byte, 0, size)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			echo(conns[i], buf)
			if i++; i == len(conns) {
				i = 0
			}
		}
	})
	b.Run("two cores", func(b *testing.B) {
		conns := newConns(1000)
		passes := (b.N + len(conns) - 1) / len(conns)
		var turn atomic.Int64 // the pass under way
		var wg sync.WaitGroup
		b.ResetTimer()
		for first := range 2 {
			wg.Go(func() {
				buf := make([]byte, 0, size)
				for pass := first; pass < passes; pass += 2 {
					for turn.Load() != int64(pass) {
						// Spin: a goroutine that parked would give up its
						// core, and the other would run on the same one.
					}
					for _, c := range conns {
						echo(c, buf)
					}
					turn.Store(int64(pass + 1))
				}
			})
		}
		wg.Wait()
	})
}
