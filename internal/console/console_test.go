package console_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/console"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// newStore returns a migrated store on an SQLite file of its own.
func newStore(t *testing.T) *meowmx.Store[*sql.Tx] {
	t.Helper()
	ctx := context.Background()
	d, err := meowmxsqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	s, err := meowmx.NewStore(d, nil)
	require.NoError(t, err)
	_, err = s.Migrate(ctx, nil)
	require.NoError(t, err)
	return s
}

// runSub runs subscription name with handler (nil: one that does
// nothing) until it has caught up, or, when keep, until the test ends.
func runSub(t *testing.T, s *meowmx.Store[*sql.Tx], name string, handler meowmx.HandlerFunc[*sql.Tx]) func() {
	t.Helper()
	if handler == nil {
		handler = func(context.Context, *sql.Tx, *meowmx.RecordedEvent) error { return nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.RunSubscription(ctx, &meowmx.SubscriptionConfig[*sql.Tx]{Name: name, Handler: handler,
			OnFailure: meowmx.FailurePark, MaxAttempts: 1, PollInterval: 20 * time.Millisecond})
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	require.NoError(t, s.WaitForSubscription(context.Background(), name))
	return stop
}

// newServer serves h on a loopback port for the test's length and
// returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func serve(t *testing.T, s console.Store, cfg console.Config) *httptest.Server {
	t.Helper()
	h, err := console.New(s, cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func appendEv(t *testing.T, s *meowmx.Store[*sql.Tx], typ, id, evType, data string) {
	t.Helper()
	_, err := s.Append(context.Background(), meowmx.StreamID{Type: typ, ID: id}, meowmx.AnyVersion,
		meowmx.EventData{Type: evType, Data: json.RawMessage(data), Metadata: json.RawMessage(`{"by":"<i>me</i>"}`)})
	require.NoError(t, err)
}

// TestConsoleEscapes: payloads, metadata, ids, categories and event types
// that hold HTML are shown as text on every page that shows them.
func TestConsoleEscapes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	evil := `<img src=x onerror=alert(1)>"'`
	appendEv(t, s, "<b>cat</b>", evil, "<script>Fed</script>", `{"note":"<script>alert(1)</script>"}`)
	srv := serve(t, s, console.Config{})
	pages := []string{
		"/",
		"/streams?type=" + url.QueryEscape("<b>cat</b>"),
		"/streams?type=" + url.QueryEscape("<b>cat</b>") + "&prefix=" + url.QueryEscape("<img"),
		"/stream?id=" + url.QueryEscape(evil),
		"/log",
		"/log?type=" + url.QueryEscape("<b>cat</b>") + "&event=" + url.QueryEscape("<script>Fed</script>"),
		"/stream?id=" + url.QueryEscape("<u>missing</u>"),
	}
	raw := regexp.MustCompile(`<script>|<img|<b>|<i>|<u>|onerror=alert\(1\)>`)
	for _, p := range pages {
		code, body := get(t, http.DefaultClient, srv.URL+p)
		require.Contains(t, []int{200, 404}, code, p)
		require.Empty(t, raw.FindAllString(body, -1), "raw HTML on %s:\n%s", p, body)
	}
	_, body := get(t, http.DefaultClient, srv.URL+"/stream?id="+url.QueryEscape(evil))
	require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;", "the payload is shown, as text")
	require.Contains(t, body, "&lt;img src=x onerror=alert(1)&gt;", "the id is shown, as text")
	require.Contains(t, body, "&lt;i&gt;me&lt;/i&gt;", "the metadata is shown, as text")
	_, body = get(t, http.DefaultClient, srv.URL+"/log")
	require.Contains(t, body, "&lt;script&gt;Fed&lt;/script&gt;")
}

// TestConsolePages: the pages page through what they list.
func TestConsolePages(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for i := range 7 {
		appendEv(t, s, "cat", "c"+string(rune('a'+i)), "Born", `{"n":1}`)
	}
	for i := range 5 {
		appendEv(t, s, "cat", "ca", "Fed", `{"n":2}`)
		_ = i
	}
	srv := serve(t, s, console.Config{PageSize: 3})
	_, body := get(t, http.DefaultClient, srv.URL+"/streams?type=cat")
	require.Contains(t, body, ">ca<")
	require.Contains(t, body, ">cc<")
	require.NotContains(t, body, ">cd<")
	require.Contains(t, body, "after=cc")
	_, body = get(t, http.DefaultClient, srv.URL+"/streams?type=cat&after=cc")
	require.Contains(t, body, ">cd<")
	require.NotContains(t, body, ">cc<")
	_, body = get(t, http.DefaultClient, srv.URL+"/streams?type=cat&prefix=cg")
	require.Contains(t, body, ">cg<")
	require.NotContains(t, body, ">cf<")

	_, body = get(t, http.DefaultClient, srv.URL+"/stream?id=ca")
	require.Contains(t, body, `"ver">#0<`)
	require.Contains(t, body, `"ver">#2<`)
	require.NotContains(t, body, `"ver">#3<`)
	require.Contains(t, body, "from=3")

	// Links carry ids that need escaping, once.
	appendEv(t, s, "cat", "x&y z/%41?", "Born", `{}`)
	_, body = get(t, http.DefaultClient, srv.URL+"/streams?type=cat&prefix=x")
	m := regexp.MustCompile(`href="(/stream\?id=[^"]+)"`).FindStringSubmatch(body)
	require.Len(t, m, 2, body)
	code, page := get(t, http.DefaultClient, srv.URL+html.UnescapeString(m[1]))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, `<h1 class="id">x&amp;y z/%41?</h1>`)

	_, body = get(t, http.DefaultClient, srv.URL+"/log?event=Born")
	require.Equal(t, 3, strings.Count(body, `class="type">Born`))
	require.NotContains(t, body, `class="type">Fed`)
	require.Contains(t, body, "before=")
}

// TestConsoleReadOnly: without AllowWrites nothing changes, whatever is sent.
func TestConsoleReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	appendEv(t, s, "cat", "c1", "Born", `{}`)
	runSub(t, s, "sub", nil)
	srv := serve(t, s, console.Config{})
	_, body := get(t, http.DefaultClient, srv.URL+"/subscription?name=sub")
	require.NotContains(t, body, "/confirm")
	code, _ := get(t, http.DefaultClient, srv.URL+"/confirm?action=delete&name=sub")
	require.Equal(t, http.StatusForbidden, code)
	res, err := noRedirect.PostForm(srv.URL+"/action", url.Values{"action": {"delete"}, "name": {"sub"}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Len(t, subs, 1, "still there")
}

// TestConsoleCSRF: an action needs the token of the confirmation page and
// a same-origin request.
func TestConsoleCSRF(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	runSub(t, s, "sub", nil)
	srv := serve(t, s, console.Config{AllowWrites: true})
	_, page := get(t, http.DefaultClient, srv.URL+"/confirm?action=delete&name=sub")
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	require.Len(t, m, 2, page)

	post := func(form url.Values, header http.Header) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/action", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header[k] = v
		}
		res, err := noRedirect.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	form := url.Values{"action": {"delete"}, "name": {"sub"}}
	require.Equal(t, http.StatusForbidden, post(form, nil), "no token")
	form.Set("csrf", strings.Repeat("0", len(m[1])))
	require.Equal(t, http.StatusForbidden, post(form, nil), "wrong token")
	form.Set("csrf", m[1])
	require.Equal(t, http.StatusForbidden, post(form, http.Header{"Sec-Fetch-Site": {"cross-site"}}), "cross-site")
	require.Equal(t, http.StatusForbidden, post(form, http.Header{"Origin": {"https://evil.example"}}), "other origin")
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Len(t, subs, 1, "nothing deleted yet")
	require.Equal(t, http.StatusSeeOther, post(form, http.Header{"Sec-Fetch-Site": {"same-origin"}}))
	subs, err = s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Empty(t, subs, "deleted")
}

// TestConsoleToken: with a token, every page and asset needs it; ?token=
// sets a cookie and leaves the address bar.
func TestConsoleToken(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	srv := serve(t, s, console.Config{Token: "s3cret"})
	for _, p := range []string{"/", "/log", "/log/live", "/assets/app.js", "/subscriptions"} {
		code, _ := get(t, http.DefaultClient, srv.URL+p)
		require.Equal(t, http.StatusUnauthorized, code, p)
	}
	code, _ := get(t, http.DefaultClient, srv.URL+"/?token=wrong")
	require.Equal(t, http.StatusUnauthorized, code)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/log", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	res, err = noRedirect.Get(srv.URL + "/log?token=s3cret")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/log", res.Header.Get("Location"))
	ck := res.Cookies()
	require.Len(t, ck, 1)
	require.True(t, ck[0].HttpOnly)
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/subscriptions", nil)
	req.AddCookie(ck[0])
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}

// TestConsoleLive: the live log sends events appended after it opened,
// rendered and escaped, filtered as asked.
func TestConsoleLive(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	appendEv(t, s, "cat", "old", "Born", `{}`)
	srv := serve(t, s, console.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/log/live?type=cat", nil)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	r := bufio.NewReader(res.Body)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, ": live\n", line, "the stream is open: what follows was appended after")
	appendEv(t, s, "dog", "d1", "Barked", `{}`)
	appendEv(t, s, "cat", "<new>", "Fed", `{"x":"<script>"}`)
	var got []string
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if line == "\n" && len(got) > 0 {
			break
		}
		got = append(got, line)
	}
	msg := strings.Join(got, "")
	require.Contains(t, msg, "event: event\n")
	require.Contains(t, msg, "&lt;new&gt;")
	require.Contains(t, msg, "&lt;script&gt;")
	require.NotContains(t, msg, "old")
	require.NotContains(t, msg, "d1", "filtered by category")
}
