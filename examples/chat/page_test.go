package main

// Tests of the page itself (index.html), in headless Chromium. They skip
// where there is no Chromium, unless WS13_REQUIRE_BROWSER is set (CI sets
// it once `make interop` has installed Chromium).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ws13/websocket"
)

// runPage loads the page from a file, with probe (a script) appended to
// its body, in headless Chromium, and decodes into result the JSON that
// probe puts in document.title after "RESULT ". Over file:// the page's
// own connection fails at once, so what probe sees is the page's code.
func runPage(t *testing.T, probe string, result any) {
	t.Helper()
	browser := findBrowser(t)
	doc := withProbe(probe)
	file := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	runBrowser(t, browser, "file://"+file, 0, result)
}

// withProbe returns the page with probe (a script) appended to its body.
func withProbe(probe string) string {
	return strings.Replace(string(page), "</body>", "<script>\n"+probe+"\n</script></body>", 1)
}

// headlessArgs are the flags every test starts Chromium with: headless, no
// sandbox, nothing fetched from Google, and a fresh profile of the test's.
func headlessArgs(t *testing.T) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}
}

// findBrowser returns the path of a Chromium, or skips the test where there
// is none (fails it if WS13_REQUIRE_BROWSER is set).
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("WS13_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium, and WS13_REQUIRE_BROWSER is set")
	}
	t.Skip("no Chromium to run the page")
	return ""
}

// runBrowser loads url in headless Chromium and decodes into result the
// JSON that the page puts in document.title after "RESULT ". With wait > 0
// the page's timers get that much time (virtual time: Chromium runs them
// as fast as it can) before the page is read; otherwise it is read once
// loaded.
func runBrowser(t *testing.T, browser, url string, wait time.Duration, result any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(headlessArgs(t), "--window-size=800,600", "--dump-dom")
	if wait > 0 {
		args = append(args, fmt.Sprintf("--virtual-time-budget=%d", wait.Milliseconds()))
	}
	out, err := exec.CommandContext(ctx, browser, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("%s: %v", browser, err)
	}
	m := regexp.MustCompile(`RESULT (\{[^<]*\})`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no result in the page:\n%s", out)
	}
	if err := json.Unmarshal(m[1], result); err != nil {
		t.Fatal(err)
	}
}

// The page shows each line with white-space: pre-wrap, so a guest could pad
// a message with spaces until the browser wraps it, and start a line of
// the display with "guest-2: …": oneLine's removal of line breaks alone
// does not stop a line from passing for another's. Shows a forged line with
// the page's own show(), and checks that the forged name does not start
// where lines start.
func TestBrowserWrappedLineCannotPassForAnother(t *testing.T) {
	forged := "guest-1: ok" + strings.Repeat(" ", 600) + "guest-2: my password is hunter2"
	probe := `show("guest-2: hello");
show(` + strconv.Quote(forged) + `);
const lis = document.querySelectorAll("#log li");
function left(li, needle) {
  const walker = document.createTreeWalker(li, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const i = n.data.lastIndexOf(needle);
    if (i >= 0) {
      const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
      return r.getBoundingClientRect();
    }
  }
}
const real = left(lis[0], "guest-2"), fake = left(lis[1], "guest-2"), start = left(lis[1], "guest-1");
document.title = "RESULT " + JSON.stringify({realLeft: real.left, fakeLeft: fake.left, fakeTop: fake.top, startTop: start.top});`
	var got struct{ RealLeft, FakeLeft, FakeTop, StartTop float64 }
	runPage(t, probe, &got)
	if got.FakeTop <= got.StartTop {
		t.Fatalf("the forged line did not wrap (%+v): the test proves nothing", got)
	}
	if got.FakeLeft <= got.RealLeft {
		t.Fatalf("a wrapped message shows \"guest-2: …\" where real lines start (%+v)", got)
	}
}

// The page keeps the last maxLines lines, and follows new ones only while
// the reader is at the bottom: one who scrolled up stays where they are.
func TestBrowserLogIsBoundedAndScrollsOnlyAtTheBottom(t *testing.T) {
	probe := `for (let i = 0; i < maxLines + 50; i++) show("guest-1: line " + i);
const count = log.childElementCount, first = log.firstElementChild.textContent;
const followed = log.scrollHeight - log.scrollTop - log.clientHeight < 2;
log.scrollTop = 0;
show("guest-1: one more");
document.title = "RESULT " + JSON.stringify({count, max: maxLines, first, followed, stayedUp: log.scrollTop === 0});`
	var got struct {
		Count, Max         int
		First              string
		Followed, StayedUp bool
	}
	runPage(t, probe, &got)
	if got.Count != got.Max || got.First != "guest-1: line 50" {
		t.Errorf("after %d lines the log holds %d, first %q; want %d, first %q", got.Max+50, got.Count, got.First, got.Max, "guest-1: line 50")
	}
	if !got.Followed {
		t.Error("a reader at the bottom was not taken to new lines")
	}
	if !got.StayedUp {
		t.Error("a reader who scrolled up was taken to the bottom by a new line")
	}
}

// After a lost connection the page connects again, and learns its new
// name. The page's first WebSocket request is closed at once with 1001, as
// by a server that restarts; the page must come back to the room on its
// own. A probe in the page reports its status line to the room, where a Go
// guest reads it: the test waits in real time, not in the browser's.
func TestBrowserPageReconnects(t *testing.T) {
	browser := findBrowser(t)
	rm := newRoom()
	var mu sync.Mutex
	pageAttempts := 0
	mux := http.NewServeMux()
	mux.Handle("/", rm)
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fromPage := r.Header.Get("Origin") != "" // the Go guest sends none
		if fromPage {
			pageAttempts++
		}
		first := fromPage && pageAttempts == 1
		mu.Unlock()
		if !first {
			rm.ServeHTTP(w, r)
			return
		}
		if c, err := websocket.Accept(w, r, nil); err == nil {
			c.Close(websocket.StatusGoingAway, "restarting")
		}
	})
	probe := `new MutationObserver(() => {
  if (status.textContent.startsWith("connected as")) ws.send("status " + status.textContent);
}).observe(status, {childList: true, characterData: true, subtree: true});`
	doc := withProbe(probe)
	mux.HandleFunc("GET /probe", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, doc)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(rm.Close)

	watcher := dial(t, srv.URL) // guest-1
	expect(t, watcher, "* guest-1 joined")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, append(headlessArgs(t), srv.URL+"/probe")...)
	if err := startInGroup(cmd); err != nil {
		t.Fatal(err)
	}
	defer killGroup(cmd)
	want := "guest-2: status connected as guest-2"
	for {
		_, msg, err := watcher.Read(ctx)
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("waiting for %q: %v (%d attempts from the page)", want, err, pageAttempts)
		}
		if string(msg) == want {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if pageAttempts != 2 {
		t.Errorf("%d connection attempts from the page, want 2", pageAttempts)
	}
}
