// Package console is meowmx's web console: server-rendered pages (html/template,
// which escapes every payload and id) and a small script, embedded in the
// binary. It browses categories, streams and the global log, follows new
// events live (server-sent events driven by the store's wake-ups), and shows
// subscriptions, their parked events and the sessions holding the commit
// horizon back. Actions that change the store (replay parked events, reset,
// delete a subscription) exist only with Config.AllowWrites, each behind a
// confirmation page and a CSRF token.
//
// Every page reads a bounded amount: pages are keyset-paged (categories and
// streams by name, events by position), and counts that would scan a table
// are capped and labelled as estimates.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"iter"
	"log/slog"
	"net/http"
	"time"

	"github.com/meowmx/meowmx"
)

//go:embed assets templates
var files embed.FS

// Store is what the console reads and changes of a meowmx store, whatever
// its driver: *meowmx.Store satisfies it.
type Store interface {
	Categories(ctx context.Context, opts *meowmx.CategoriesOpts) ([]*meowmx.CategoryInfo, error)
	Streams(ctx context.Context, opts *meowmx.StreamsOpts) ([]*meowmx.StreamInfo, error)
	Stream(ctx context.Context, id string) (*meowmx.StreamInfo, error)
	ReadStream(ctx context.Context, id string, opts *meowmx.ReadStreamOpts) ([]*meowmx.RecordedEvent, error)
	ReadAll(ctx context.Context, opts *meowmx.ReadAllOpts) ([]*meowmx.RecordedEvent, error)
	IterAll(ctx context.Context, opts *meowmx.ReadAllOpts) iter.Seq2[*meowmx.RecordedEvent, error]
	Subscriptions(ctx context.Context) ([]*meowmx.SubscriptionInfo, error)
	HorizonHolders(ctx context.Context, olderThan time.Duration) ([]*meowmx.HorizonHolder, error)
	ParkedEvents(ctx context.Context, name string) ([]*meowmx.ParkedEvent, error)
	ReplayParked(ctx context.Context, name string, opts *meowmx.ReplayParkedOpts) (int, error)
	ResetSubscription(ctx context.Context, name string, pos meowmx.Position) error
	DeleteSubscription(ctx context.Context, name string) error
}

// Config configures a console. The zero value is a read-only console
// without a token.
type Config struct {
	// AllowWrites enables the actions that change the store. Defaults
	// to false: the console only reads.
	AllowWrites bool
	// Token, when set, is required of every request: as the cookie
	// meowmx_token, an Authorization: Bearer header, or ?token= once
	// (which sets the cookie).
	Token string
	// Name is shown in the title bar: the database, without secrets.
	Name string
	// PageSize is how many rows a page shows. Defaults to 50.
	PageSize int
	// Logger logs failed requests. Defaults to discarding.
	Logger *slog.Logger
}

// Console is an http.Handler serving the console.
type Console struct {
	store Store
	cfg   Config
	csrf  string
	tmpl  map[string]*template.Template
	mux   *http.ServeMux
}

// New returns a console on store. It fails only when its embedded
// templates do not parse.
func New(store Store, cfg Config) (*Console, error) {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	c := &Console{store: store, cfg: cfg, csrf: hex.EncodeToString(b), tmpl: map[string]*template.Template{}}
	pages, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		if p == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", p, err)
		}
		c.tmpl[p[len("templates/"):]] = t
	}
	assets, _ := fs.Sub(files, "assets")
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /{$}", c.categories)
	mux.HandleFunc("GET /streams", c.streams)
	mux.HandleFunc("GET /stream", c.stream)
	mux.HandleFunc("GET /log", c.log)
	mux.HandleFunc("GET /log/live", c.live)
	mux.HandleFunc("GET /subscriptions", c.subscriptions)
	mux.HandleFunc("GET /subscription", c.subscription)
	mux.HandleFunc("GET /confirm", c.confirm)
	mux.HandleFunc("POST /action", c.action)
	c.mux = mux
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if c.cfg.Token != "" && !c.authorized(w, r) {
		return
	}
	c.mux.ServeHTTP(w, r)
}

// authorized checks the token; ?token= sets the cookie and redirects to
// the same page without it, so that the token leaves the address bar.
func (c *Console) authorized(w http.ResponseWriter, r *http.Request) bool {
	same := func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(c.cfg.Token)) == 1 }
	if q := r.URL.Query().Get("token"); q != "" && same(q) {
		http.SetCookie(w, &http.Cookie{Name: "meowmx_token", Value: q, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		u := *r.URL
		v := u.Query()
		v.Del("token")
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	if ck, err := r.Cookie("meowmx_token"); err == nil && same(ck.Value) {
		return true
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && a[:7] == "Bearer " && same(a[7:]) {
		return true
	}
	http.Error(w, "meowmx console: a token is required (open the address printed by meowmx console, or send Authorization: Bearer)", http.StatusUnauthorized)
	return false
}

// page is what every template gets.
type page struct {
	Title       string
	Nav         string
	Name        string
	AllowWrites bool
	CSRF        string
	Data        any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, name, title, nav string, data any) {
	t := c.tmpl[name]
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := t.Execute(w, page{Title: title, Nav: nav, Name: c.cfg.Name, AllowWrites: c.cfg.AllowWrites, CSRF: c.csrf, Data: data})
	if err != nil {
		c.cfg.Logger.WarnContext(r.Context(), "console: render", "page", name, "err", err)
	}
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, meowmx.ErrInvalidArgument):
		code = http.StatusBadRequest
	case errors.Is(err, meowmx.ErrStreamNotFound), errors.Is(err, meowmx.ErrSubscriptionNotFound):
		code = http.StatusNotFound
	}
	if code == http.StatusInternalServerError {
		c.cfg.Logger.WarnContext(r.Context(), "console: request failed", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	c.render(w, r, "error.html", "Error", "", err.Error())
}
