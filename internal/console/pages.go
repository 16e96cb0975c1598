package console

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meowmx/meowmx"
)

var funcs = template.FuncMap{
	"pretty": pretty,
	"when":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
	"ago":    ago,
	"num":    num,
	"join":   strings.Join,
}

// pretty indents JSON; anything else is shown as it is (escaped by the
// template either way).
func pretty(b json.RawMessage) string {
	if len(b) == 0 {
		return ""
	}
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return time.Since(t).Round(time.Second).String()
}

// num prints 1234567 as 1,234,567.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (c *Console) categories(w http.ResponseWriter, r *http.Request) {
	after := r.URL.Query().Get("after")
	cats, err := c.store.Categories(r.Context(), &meowmx.CategoriesOpts{After: after, Limit: c.cfg.PageSize + 1})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var next string
	if len(cats) > c.cfg.PageSize {
		cats = cats[:c.cfg.PageSize]
		next = cats[len(cats)-1].Type
	}
	c.render(w, r, "categories.html", "Categories", "categories", map[string]any{"Categories": cats, "Next": next, "After": after})
}

func (c *Console) streams(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	typ, prefix, after := q.Get("type"), q.Get("prefix"), q.Get("after")
	if typ == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	list, err := c.store.Streams(r.Context(), &meowmx.StreamsOpts{Type: typ, Prefix: prefix, After: after, Limit: c.cfg.PageSize + 1})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var next string
	if len(list) > c.cfg.PageSize {
		list = list[:c.cfg.PageSize]
		next = list[len(list)-1].StreamID.ID
	}
	c.render(w, r, "streams.html", typ, "categories", map[string]any{
		"Type": typ, "Prefix": prefix, "After": after, "Streams": list, "Next": next})
}

func (c *Console) stream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("id")
	from, _ := strconv.ParseInt(q.Get("from"), 10, 64)
	info, err := c.store.Stream(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	evs, err := c.store.ReadStream(r.Context(), id, &meowmx.ReadStreamOpts{From: max(from, 0), Limit: c.cfg.PageSize + 1})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	next := int64(-1)
	if len(evs) > c.cfg.PageSize {
		evs = evs[:c.cfg.PageSize]
		next = evs[len(evs)-1].Version + 1
	}
	prev := int64(-1)
	if from > 0 {
		prev = max(from-int64(c.cfg.PageSize), 0)
	}
	c.render(w, r, "stream.html", id, "categories", map[string]any{"Stream": info, "Events": evs, "Next": next, "Prev": prev})
}

// logFilter is the global log's filter from the query string.
type logFilter struct {
	Type, Event string
}

func (f logFilter) opts() *meowmx.ReadAllOpts {
	o := &meowmx.ReadAllOpts{}
	if f.Type != "" {
		o.AggregateTypes = []string{f.Type}
	}
	if f.Event != "" {
		o.EventTypes = []string{f.Event}
	}
	return o
}

// Query returns the filter as a query string, for links.
func (f logFilter) Query() string {
	v := url.Values{}
	if f.Type != "" {
		v.Set("type", f.Type)
	}
	if f.Event != "" {
		v.Set("event", f.Event)
	}
	return v.Encode()
}

func (c *Console) log(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := logFilter{Type: strings.TrimSpace(q.Get("type")), Event: strings.TrimSpace(q.Get("event"))}
	o := f.opts()
	o.Limit = c.cfg.PageSize + 1
	var err error
	var evs []*meowmx.RecordedEvent
	if s := q.Get("after"); s != "" { // newer: read forward, show newest first
		if o.After, err = meowmx.ParsePosition(s); err != nil {
			c.fail(w, r, &meowmx.ArgumentError{Arg: "after", Reason: err.Error()})
			return
		}
		o.Limit = c.cfg.PageSize
		evs, err = c.store.ReadAll(r.Context(), o)
		for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
			evs[i], evs[j] = evs[j], evs[i]
		}
	} else {
		if s := q.Get("before"); s != "" {
			if o.After, err = meowmx.ParsePosition(s); err != nil {
				c.fail(w, r, &meowmx.ArgumentError{Arg: "before", Reason: err.Error()})
				return
			}
		}
		o.Backward = true
		evs, err = c.store.ReadAll(r.Context(), o)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var older string
	if q.Get("after") == "" && len(evs) > c.cfg.PageSize {
		evs = evs[:c.cfg.PageSize]
		older = evs[len(evs)-1].Position.String()
	} else if q.Get("after") != "" && len(evs) > 0 {
		older = evs[len(evs)-1].Position.String()
	}
	var newest string
	if len(evs) > 0 {
		newest = evs[0].Position.String()
	} else if s := q.Get("after"); s != "" {
		newest = s
	}
	c.render(w, r, "log.html", "Log", "log", map[string]any{
		"Filter": f, "Events": evs, "Older": older, "Newest": newest, "Paged": q.Get("before") != "" || q.Get("after") != ""})
}

// live streams the events after ?after as server-sent events, each a
// rendered table row, until the client goes away. It is driven by the
// store's wake-ups (IterAll with Follow), not by the browser polling.
func (c *Console) live(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := logFilter{Type: q.Get("type"), Event: q.Get("event")}
	o := f.opts()
	after := q.Get("after")
	if id := r.Header.Get("Last-Event-ID"); id != "" { // a reconnect resumes after the last event shown
		after = id
	}
	if s := after; s != "" {
		var err error
		if o.After, err = meowmx.ParsePosition(s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else if last, err := c.store.ReadAll(r.Context(), &meowmx.ReadAllOpts{Backward: true, Limit: 1}); err == nil && len(last) == 1 {
		o.After = last[0].Position
	}
	o.Follow = true
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": live\n\n")
	flusher.Flush()
	row := c.tmpl["log.html"].Lookup("row")
	var buf bytes.Buffer
	for ev, err := range c.store.IterAll(r.Context(), o) {
		if err != nil {
			fmt.Fprintf(w, "event: failure\ndata: %s\n\n", strings.ReplaceAll(err.Error(), "\n", " "))
			flusher.Flush()
			return
		}
		buf.Reset()
		if err := row.Execute(&buf, ev); err != nil {
			return
		}
		fmt.Fprintf(w, "id: %s\nevent: event\n", ev.Position)
		for _, line := range strings.Split(buf.String(), "\n") {
			fmt.Fprintf(w, "data: %s\n", line)
		}
		fmt.Fprint(w, "\n")
		flusher.Flush()
	}
}

func (c *Console) subscriptions(w http.ResponseWriter, r *http.Request) {
	subs, err := c.store.Subscriptions(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	holders, err := c.store.HorizonHolders(r.Context(), 0)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "subscriptions.html", "Subscriptions", "subscriptions", map[string]any{"Subscriptions": subs, "Holders": holders})
}

func (c *Console) findSubscription(r *http.Request, name string) (*meowmx.SubscriptionInfo, error) {
	subs, err := c.store.Subscriptions(r.Context())
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", meowmx.ErrSubscriptionNotFound, name)
}

func (c *Console) subscription(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	sub, err := c.findSubscription(r, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	parked, err := c.store.ParkedEvents(r.Context(), name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "subscription.html", name, "subscriptions", map[string]any{"Sub": sub, "Parked": parked, "Done": r.URL.Query().Get("done")})
}

// actions are the changes the console can make, by the form's action.
var actions = map[string]string{
	"replay": "Replay the parked events of",
	"reset":  "Reset the checkpoint of",
	"delete": "Delete",
}

// confirm shows what an action will do, with the form that does it.
func (c *Console) confirm(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.AllowWrites {
		c.forbidden(w, r)
		return
	}
	q := r.URL.Query()
	what, ok := actions[q.Get("action")]
	if !ok {
		c.fail(w, r, &meowmx.ArgumentError{Arg: "action", Reason: "unknown"})
		return
	}
	sub, err := c.findSubscription(r, q.Get("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "confirm.html", "Confirm", "subscriptions", map[string]any{
		"Action": q.Get("action"), "What": what, "Sub": sub, "Position": q.Get("position")})
}

func (c *Console) forbidden(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	c.render(w, r, "error.html", "Read only", "", "This console is read-only: start it with --allow-writes to change subscriptions.")
}

// action runs a confirmed action. It needs AllowWrites, the form's CSRF
// token, and a same-origin request (http.CrossOriginProtection).
func (c *Console) action(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.AllowWrites {
		c.forbidden(w, r)
		return
	}
	if err := http.NewCrossOriginProtection().Check(r); err != nil {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(c.csrf)) != 1 {
		http.Error(w, "bad or missing CSRF token: reload the page", http.StatusForbidden)
		return
	}
	ctx := r.Context()
	name := r.PostFormValue("name")
	var done string
	switch r.PostFormValue("action") {
	case "replay":
		n, err := c.store.ReplayParked(ctx, name, nil)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		done = fmt.Sprintf("%d parked events marked for replay", n)
	case "reset":
		pos, err := meowmx.ParsePosition(strings.TrimSpace(r.PostFormValue("position")))
		if err != nil {
			c.fail(w, r, &meowmx.ArgumentError{Arg: "position", Reason: err.Error()})
			return
		}
		if err := c.store.ResetSubscription(ctx, name, pos); err != nil {
			c.fail(w, r, err)
			return
		}
		done = "checkpoint reset to " + pos.String()
	case "delete":
		if err := c.store.DeleteSubscription(ctx, name); err != nil {
			c.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/subscriptions", http.StatusSeeOther)
		return
	default:
		c.fail(w, r, &meowmx.ArgumentError{Arg: "action", Reason: "unknown"})
		return
	}
	http.Redirect(w, r, "/subscription?name="+url.QueryEscape(name)+"&done="+url.QueryEscape(done), http.StatusSeeOther)
}
