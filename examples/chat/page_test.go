package main

// Tests of the page itself (index.html), in headless Chromium. They skip
// where there is no Chromium, unless WS13_REQUIRE_BROWSER is set (CI sets
// it once `make interop` has installed Chromium).

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runPage loads the page from a file, with probe (a script) appended to
// its body, in headless Chromium, and decodes into result the JSON that
// probe puts in document.title after "RESULT ". Over file:// the page's
// own connection fails at once, so what probe sees is the page's code.
func runPage(t *testing.T, probe string, result any) {
	t.Helper()
	var browser string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("WS13_REQUIRE_BROWSER") != "" {
			t.Fatal("no Chromium, and WS13_REQUIRE_BROWSER is set")
		}
		t.Skip("no Chromium to run the page")
	}
	doc := strings.Replace(string(page), "</body>", "<script>\n"+probe+"\n</script></body>", 1)
	file := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--window-size=800,600", "--dump-dom", "file://"+file).Output()
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
